package gateway

import (
	"errors"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Metrics receives what a Server does, for an operator's dashboards.
// Every value it is given comes from a small fixed set (resource patterns,
// problem types, challenge types, outcomes), never from what a client
// sends: no name, account or serial. Implementations are safe for
// concurrent use.
type Metrics interface {
	// Request counts an answered request to the resource of pattern (one
	// of routeTable's, or "other"), with the problem type it failed with,
	// "" when it succeeded.
	Request(pattern string, problem ProblemType)
	// OrderCreated counts a new order under profile (a configured
	// profile's name, "" for none).
	OrderCreated(profile string)
	// Issued counts a certificate stored under profile (as OrderCreated),
	// with the time of the attempt that issued it: from the order claimed
	// for issuing (at finalize, or at its latest resumption) to the
	// certificate stored.
	Issued(profile string, latency time.Duration)
	// Validation counts a finished validation of challengeType, with the
	// problem type it failed with, "" when it succeeded.
	Validation(challengeType string, problem ProblemType)
	// IssuerCall counts a call to the issuer by its outcome: "issued",
	// "pending", "refused" or "failed", and how long it took.
	IssuerCall(outcome string, latency time.Duration)
	// StorageUnavailable counts a request failed because storage was.
	StorageUnavailable()
	// Pending is how many orders this process has waiting on the CA.
	Pending(n int)
}

// NoMetrics is the Metrics of a Server configured without: it counts
// nothing.
type NoMetrics struct{}

func (NoMetrics) Request(string, ProblemType)      {}
func (NoMetrics) OrderCreated(string)              {}
func (NoMetrics) Issued(string, time.Duration)     {}
func (NoMetrics) Validation(string, ProblemType)   {}
func (NoMetrics) IssuerCall(string, time.Duration) {}
func (NoMetrics) StorageUnavailable()              {}
func (NoMetrics) Pending(int)                      {}

// issuerOutcome names what an issuer call came to.
func issuerOutcome(err error) string {
	var pending *PendingError
	var refused *IssueError
	switch {
	case err == nil:
		return "issued"
	case errors.As(err, &pending):
		return "pending"
	case errors.As(err, &refused):
		return "refused"
	}
	return "failed"
}

// countRequest counts a request to the resource of pattern answered with
// p (nil: success).
func (h *Server) countRequest(pattern string, p *Problem) {
	if p == nil {
		h.metrics.Request(pattern, "")
		return
	}
	h.metrics.Request(pattern, p.kind())
	if errors.Is(p, storage.ErrUnavailable) {
		h.metrics.StorageUnavailable()
	}
}
