package caddyacmegw

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// promMetrics puts a gateway's metrics in Caddy's Prometheus registry,
// which Caddy's admin endpoint serves at /metrics. Every metric is named
// acme_gateway_* and labelled with the gateway's name; its other labels
// take values from small fixed sets (see gateway.Metrics).
type promMetrics struct {
	requests, orders, issued, validations, issuerCalls, storageErrors *prometheus.CounterVec
	issuance, issuerLatency                                           *prometheus.HistogramVec
	pending                                                           *prometheus.GaugeVec
	gateway                                                           string
}

// newPromMetrics registers the gateway's collectors in reg, or takes
// those another handler of the same registry registered already.
func newPromMetrics(reg prometheus.Registerer, gatewayName string) (*promMetrics, error) {
	m := &promMetrics{gateway: gatewayName}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "acme_gateway", Name: name, Help: help},
			append([]string{"gateway"}, labels...))
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "acme_gateway", Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"gateway"})
	}
	m.requests = counter("requests_total", "ACME requests answered, by resource and the problem type they failed with (empty: none).", "resource", "problem")
	m.orders = counter("orders_total", "New orders, by profile (a configured profile's name, empty: none).", "profile")
	m.issued = counter("certificates_issued_total", "Certificates issued and stored, by profile (a configured profile's name, empty: none).", "profile")
	m.validations = counter("validations_total", "Challenge validations finished, by challenge type and the problem type they failed with (empty: none).", "challenge", "problem")
	m.issuerCalls = counter("issuer_calls_total", "Calls to the issuer, by outcome: issued, pending, refused, failed.", "outcome")
	m.storageErrors = counter("storage_unavailable_total", "Requests failed because storage was unavailable.")
	m.issuance = histogram("issuance_seconds", "Time of the attempt that issued: from the order claimed for issuing (finalize, or its latest resumption) to the certificate stored.")
	m.issuerLatency = histogram("issuer_call_seconds", "Time of one call to the issuer.")
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "acme_gateway", Name: "pending_orders",
		Help: "Orders this process has waiting on the CA."}, []string{"gateway"})
	var err error
	for _, c := range []**prometheus.CounterVec{&m.requests, &m.orders, &m.issued, &m.validations, &m.issuerCalls, &m.storageErrors} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	for _, h := range []**prometheus.HistogramVec{&m.issuance, &m.issuerLatency} {
		if *h, err = register(reg, *h); err != nil {
			return nil, err
		}
	}
	if m.pending, err = register(reg, m.pending); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c in reg, or returns the collector of the same
// description registered before (by another handler of this config).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *promMetrics) Request(pattern string, problem gateway.ProblemType) {
	m.requests.WithLabelValues(m.gateway, pattern, string(problem)).Inc()
}

func (m *promMetrics) OrderCreated(profile string) {
	m.orders.WithLabelValues(m.gateway, profile).Inc()
}

func (m *promMetrics) Issued(profile string, latency time.Duration) {
	m.issued.WithLabelValues(m.gateway, profile).Inc()
	m.issuance.WithLabelValues(m.gateway).Observe(latency.Seconds())
}

func (m *promMetrics) Validation(challengeType string, problem gateway.ProblemType) {
	m.validations.WithLabelValues(m.gateway, challengeType, string(problem)).Inc()
}

func (m *promMetrics) IssuerCall(outcome string, latency time.Duration) {
	m.issuerCalls.WithLabelValues(m.gateway, outcome).Inc()
	m.issuerLatency.WithLabelValues(m.gateway).Observe(latency.Seconds())
}

func (m *promMetrics) StorageUnavailable() { m.storageErrors.WithLabelValues(m.gateway).Inc() }

func (m *promMetrics) Pending(n int) { m.pending.WithLabelValues(m.gateway).Set(float64(n)) }

// Interface guard.
var _ gateway.Metrics = (*promMetrics)(nil)
