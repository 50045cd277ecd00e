package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// topErrors is how many distinct errors a report lists.
const topErrors = 5

// Report is the outcome of one run.
type Report struct {
	Directory string
	Challenge string
	Workers   int
	// Target is the number of certificates asked for (-n).
	Target int
	// Issued is the number of certificates obtained.
	Issued int
	// Errors is the number of issuances that failed; Abandoned the number
	// still in flight when the time limit passed or the run was
	// interrupted, which count as neither.
	Errors    int
	Abandoned int
	// TopErrors are the most frequent errors, by the step that failed
	// and its problem type or, for an error without a problem document,
	// by message; most frequent first.
	TopErrors []ErrorCount
	// Duration runs from the first new order to the last issuance.
	Duration time.Duration
	// Latency is that of one whole issuance, new order to certificate.
	Latency Latency
}

// ErrorCount is how often one kind of error happened.
type ErrorCount struct {
	// Error is the kind: the step that failed and a problem type
	// ("challenge: urn:ietf:params:acme:error:rateLimited"), or a message,
	// which starts with the step, with the name ordered and URLs' paths
	// taken out.
	Error string `json:"error"`
	Count int    `json:"count"`
	// Example is the first message of this kind, as a hint to its cause.
	Example string `json:"example"`
}

// Latency summarises issuance latencies (nearest-rank percentiles).
type Latency struct {
	P50, P95, P99, Max time.Duration
}

// CertsPerSecond is the throughput: certificates issued per second of
// Duration.
func (r *Report) CertsPerSecond() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Issued) / r.Duration.Seconds()
}

// summarize sorts latencies in place and returns their percentiles.
func summarize(latencies []time.Duration) Latency {
	slices.Sort(latencies)
	return Latency{
		P50: percentile(latencies, 50),
		P95: percentile(latencies, 95),
		P99: percentile(latencies, 99),
		Max: percentile(latencies, 100),
	}
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value that at least p% of the values are less than or equal to. It is 0
// for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// rankErrors orders counts most frequent first (ties by text, so that a
// report reads the same from run to run) and keeps the first n.
func rankErrors(counts map[string]*ErrorCount, n int) []ErrorCount {
	out := make([]ErrorCount, 0, len(counts))
	for _, e := range counts {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b ErrorCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Error, b.Error)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// WriteText writes the report for a person to read.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "directory     %s\n", r.Directory)
	fmt.Fprintf(&b, "challenge     %s, %d workers\n", r.Challenge, r.Workers)
	fmt.Fprintf(&b, "issued        %d of %d\n", r.Issued, r.Target)
	fmt.Fprintf(&b, "errors        %d\n", r.Errors)
	fmt.Fprintf(&b, "abandoned     %d\n", r.Abandoned)
	fmt.Fprintf(&b, "duration      %s\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "certs/s       %.2f\n", r.CertsPerSecond())
	fmt.Fprintf(&b, "latency       p50 %s  p95 %s  p99 %s  max %s\n",
		roundLatency(r.Latency.P50), roundLatency(r.Latency.P95),
		roundLatency(r.Latency.P99), roundLatency(r.Latency.Max))
	if len(r.TopErrors) > 0 {
		b.WriteString("top errors\n")
		for _, e := range r.TopErrors {
			fmt.Fprintf(&b, "  %6d  %s\n", e.Count, e.Error)
			if e.Example != e.Error {
				fmt.Fprintf(&b, "          e.g. %s\n", e.Example)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// roundLatency keeps a latency readable: whole milliseconds, or
// microseconds below one millisecond.
func roundLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// jsonReport is Report on the wire: durations as numbers in the unit their
// name says, so that scripts need not parse Go durations.
type jsonReport struct {
	Directory       string       `json:"directory"`
	Challenge       string       `json:"challenge"`
	Workers         int          `json:"workers"`
	Target          int          `json:"target"`
	Issued          int          `json:"issued"`
	Errors          int          `json:"errors"`
	Abandoned       int          `json:"abandoned"`
	TopErrors       []ErrorCount `json:"top_errors"`
	DurationSeconds float64      `json:"duration_seconds"`
	CertsPerSecond  float64      `json:"certs_per_second"`
	LatencyMS       jsonLatency  `json:"latency_ms"`
}

type jsonLatency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// MarshalJSON writes the report as one JSON object.
func (r *Report) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	top := r.TopErrors
	if top == nil {
		top = []ErrorCount{}
	}
	return json.Marshal(jsonReport{
		Directory:       r.Directory,
		Challenge:       r.Challenge,
		Workers:         r.Workers,
		Target:          r.Target,
		Issued:          r.Issued,
		Errors:          r.Errors,
		Abandoned:       r.Abandoned,
		TopErrors:       top,
		DurationSeconds: r.Duration.Seconds(),
		CertsPerSecond:  r.CertsPerSecond(),
		LatencyMS: jsonLatency{
			P50: ms(r.Latency.P50), P95: ms(r.Latency.P95),
			P99: ms(r.Latency.P99), Max: ms(r.Latency.Max),
		},
	})
}
