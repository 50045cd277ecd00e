package caddyacmegw

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// Two gateways of one config share the collectors of its registry, each
// with its own label.
func TestPromMetrics_TwoGatewaysOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newPromMetrics(reg, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := newPromMetrics(reg, "b")
	if err != nil {
		t.Fatal(err)
	}
	a.Request("/new-order", "")
	a.Request("/new-order", gateway.ProblemRateLimited)
	b.Request("/new-order", "")
	a.OrderCreated("short")
	a.OrderCreated("short")
	b.OrderCreated("")
	a.Issued("short", 50*time.Millisecond)
	b.Validation("http-01", gateway.ProblemConnection)
	a.IssuerCall("pending", time.Second)
	a.Pending(3)
	want := `
# HELP acme_gateway_requests_total ACME requests answered, by resource and the problem type they failed with (empty: none).
# TYPE acme_gateway_requests_total counter
acme_gateway_requests_total{gateway="a",problem="",resource="/new-order"} 1
acme_gateway_requests_total{gateway="a",problem="rateLimited",resource="/new-order"} 1
acme_gateway_requests_total{gateway="b",problem="",resource="/new-order"} 1
# HELP acme_gateway_pending_orders Orders this process has waiting on the CA.
# TYPE acme_gateway_pending_orders gauge
acme_gateway_pending_orders{gateway="a"} 3
# HELP acme_gateway_orders_total New orders, by profile (a configured profile's name, empty: none).
# TYPE acme_gateway_orders_total counter
acme_gateway_orders_total{gateway="a",profile="short"} 2
acme_gateway_orders_total{gateway="b",profile=""} 1
# HELP acme_gateway_certificates_issued_total Certificates issued and stored, by profile (a configured profile's name, empty: none).
# TYPE acme_gateway_certificates_issued_total counter
acme_gateway_certificates_issued_total{gateway="a",profile="short"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "acme_gateway_requests_total", "acme_gateway_pending_orders",
		"acme_gateway_orders_total", "acme_gateway_certificates_issued_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a.issuance); n != 1 {
		t.Fatalf("issuance histogram has %d series, want 1", n)
	}
	if got := testutil.ToFloat64(b.validations.WithLabelValues("b", "http-01", "connection")); got != 1 {
		t.Fatalf("validations = %v", got)
	}
}
