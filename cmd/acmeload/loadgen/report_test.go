package loadgen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile_NearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values", nil, 50, 0},
		{"one value is every percentile", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of two is the lower", []time.Duration{ms(1), ms(2)}, 50, ms(1)},
		{"p50 of three is the middle", []time.Duration{ms(1), ms(2), ms(3)}, 50, ms(2)},
		{"p95 of 1..100", hundred, 95, ms(95)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the maximum", hundred, 100, ms(100)},
		{"p99 of ten is the maximum", hundred[:10], 99, ms(10)},
		{"p0 is the minimum", hundred, 0, ms(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize_SortsBeforeRanking(t *testing.T) {
	got := summarize([]time.Duration{ms(30), ms(10), ms(20)})
	want := Latency{P50: ms(20), P95: ms(30), P99: ms(30), Max: ms(30)}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
}

func TestRankErrors_MostFrequentFirstThenByText(t *testing.T) {
	counts := map[string]*ErrorCount{}
	for i, kind := range []string{"a", "b", "c", "d", "e", "f"} {
		counts[kind] = &ErrorCount{Error: kind, Count: 1 + i%3}
	}
	got := rankErrors(counts, 5)
	var order []string
	for _, e := range got {
		order = append(order, e.Error)
	}
	if want := "c f b e a"; strings.Join(order, " ") != want {
		t.Errorf("order %v, want %s", order, want)
	}
}

func sampleReport() *Report {
	return &Report{
		Directory: "https://ca.test/acme/directory",
		Challenge: "dns-01",
		Workers:   4,
		Target:    20,
		Issued:    18,
		Errors:    3,
		Abandoned: 2,
		TopErrors: []ErrorCount{
			{Error: "urn:ietf:params:acme:error:rateLimited", Count: 2, Example: "HTTP 429 urn:ietf:params:acme:error:rateLimited - slow down"},
			{Error: "EOF", Count: 1, Example: "EOF"},
		},
		Duration: 2*time.Second + 250*time.Millisecond,
		Latency:  Latency{P50: ms(400), P95: ms(900) + 400*time.Microsecond, P99: ms(1000), Max: 1500 * time.Microsecond * 1000},
	}
}

func TestReport_WriteText(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
		want   string
	}{
		{"with errors", sampleReport(), `directory     https://ca.test/acme/directory
challenge     dns-01, 4 workers
issued        18 of 20
errors        3
abandoned     2
duration      2.25s
certs/s       8.00
latency       p50 400ms  p95 900ms  p99 1s  max 1.5s
top errors
       2  urn:ietf:params:acme:error:rateLimited
          e.g. HTTP 429 urn:ietf:params:acme:error:rateLimited - slow down
       1  EOF
`},
		{"nothing issued", &Report{Directory: "d", Challenge: "http-01", Workers: 1, Target: 5}, `directory     d
challenge     http-01, 1 workers
issued        0 of 5
errors        0
abandoned     0
duration      0s
certs/s       0.00
latency       p50 0s  p95 0s  p99 0s  max 0s
`},
		{"sub-millisecond latencies keep microseconds", &Report{Directory: "d", Challenge: "dns-01", Workers: 1, Target: 1, Issued: 1,
			Duration: ms(1), Latency: Latency{P50: 512 * time.Microsecond, P95: ms(1), P99: ms(1), Max: ms(1)}}, `directory     d
challenge     dns-01, 1 workers
issued        1 of 1
errors        0
abandoned     0
duration      1ms
certs/s       1000.00
latency       p50 512µs  p95 1ms  p99 1ms  max 1ms
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := tc.report.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestReport_MarshalJSON(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
		want   string
	}{
		{"with errors", sampleReport(), `{"directory":"https://ca.test/acme/directory","challenge":"dns-01","workers":4,"target":20,"issued":18,"errors":3,"abandoned":2,` +
			`"top_errors":[{"error":"urn:ietf:params:acme:error:rateLimited","count":2,"example":"HTTP 429 urn:ietf:params:acme:error:rateLimited - slow down"},{"error":"EOF","count":1,"example":"EOF"}],` +
			`"duration_seconds":2.25,"certs_per_second":8,"latency_ms":{"p50":400,"p95":900.4,"p99":1000,"max":1500}}`},
		{"no errors is an empty list", &Report{Directory: "d", Challenge: "dns-01", Workers: 1, Target: 1}, `{"directory":"d","challenge":"dns-01","workers":1,"target":1,"issued":0,"errors":0,"abandoned":0,` +
			`"top_errors":[],"duration_seconds":0,"certs_per_second":0,"latency_ms":{"p50":0,"p95":0,"p99":0,"max":0}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.report)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
