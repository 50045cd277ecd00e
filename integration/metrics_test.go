package integration

import (
	"crypto/ecdsa"
	"crypto/x509"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// After an issuance, Caddy's /metrics shows the gateway's counters moved:
// requests by resource, the order and the certificate by profile (none
// here), the validation and the issuer call, each labelled with the
// gateway's name.
func TestMetrics_CaddyServesTheGatewaysCounters(t *testing.T) {
	e := startACMEEnv(t)
	moving := []string{
		`acme_gateway_orders_total{gateway="default",profile=""}`,
		`acme_gateway_certificates_issued_total{gateway="default",profile=""}`,
		`acme_gateway_requests_total{gateway="default",problem="",resource="/new-account"}`,
		`acme_gateway_requests_total{gateway="default",problem="",resource="/order/{id}/finalize"}`,
		`acme_gateway_validations_total{challenge="http-01",gateway="default",problem=""}`,
		`acme_gateway_issuer_calls_total{gateway="default",outcome="issued"}`,
		`acme_gateway_issuance_seconds_count{gateway="default"}`,
	}
	before := scrapeMetrics(t, e.G)

	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acmezObtain(t, c, acmezAccount(t, c), "metrics.example.com")

	after := scrapeMetrics(t, e.G)
	for _, series := range moving {
		if b, a := metricValue(t, before, series), metricValue(t, after, series); a != b+1 {
			t.Errorf("%s went from %v to %v over one issuance, want one more", series, b, a)
		}
	}
	if !strings.Contains(after, `acme_gateway_issuance_seconds_bucket{gateway="default",le="+Inf"} 1`) {
		t.Errorf("/metrics lacks the issuance histogram's buckets")
	}
}

// Orders and certificates are counted by profile: the one an order names,
// the default for one naming none. An order refused for its profile is
// counted as a refused request only, so no label ever holds what a
// client sent.
func TestMetrics_OrdersAndCertificatesByProfile(t *testing.T) {
	e := startACMEEnvWith(t, localProfiles)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	for _, profile := range []string{"short", "short", ""} {
		params, err := acmez.OrderParametersFromCSR(acct, mustCSR(t, "profile.example.com"))
		if err != nil {
			t.Fatal(err)
		}
		params.Profile = profile
		if _, err := c.ObtainCertificate(t.Context(), params); err != nil {
			t.Fatalf("obtaining under %q: %v", profile, err)
		}
	}
	status := postNewOrder(t, e, c, acct, `{"identifiers":[{"type":"dns","value":"x.example.com"}],"profile":"client-chosen"}`)
	if status != http.StatusBadRequest {
		t.Fatalf("order under an unknown profile: HTTP %d, want 400", status)
	}

	body := wantMetrics(t, e.G,
		`acme_gateway_orders_total{gateway="default",profile="short"} 2`,
		`acme_gateway_orders_total{gateway="default",profile="long"} 1`,
		`acme_gateway_certificates_issued_total{gateway="default",profile="short"} 2`,
		`acme_gateway_certificates_issued_total{gateway="default",profile="long"} 1`,
		`acme_gateway_requests_total{gateway="default",problem="invalidProfile",resource="/new-order"} 1`,
	)
	if strings.Contains(body, "client-chosen") {
		t.Fatal("/metrics holds a profile name a client sent")
	}
}

// mustCSR is a CSR for names with a fresh key.
func mustCSR(t *testing.T, names ...string) *x509.CertificateRequest {
	t.Helper()
	csr, err := acmez.NewCSR(newKey(t), names)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// postNewOrder sends newOrder with payload for acct and returns the
// status.
func postNewOrder(t *testing.T, e *acmeEnv, c *acmez.Client, acct acme.Account, payload string) int {
	t.Helper()
	dir, err := c.GetDirectory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return postJWS(t, e.G, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, dir.NewOrder, []byte(payload)).Status
}

// scrapeMetrics is what curl gets from Caddy's /metrics, as an operator's
// scraper would.
func scrapeMetrics(t *testing.T, g *gateway) string {
	t.Helper()
	out, err := runClient(t, findClient(t, "curl"), nil, "-sS", "--fail", "http://"+g.AdminAddr+"/metrics")
	if err != nil {
		t.Fatalf("curl /metrics: %v\n%s", err, out)
	}
	return out
}

// metricValue is the value of series (its name and labels exactly as
// served) in a scrape, 0 when the scrape lacks it.
func metricValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return 0
}

// wantMetrics fails t for each of want that Caddy's /metrics lacks, and
// returns what it served.
func wantMetrics(t *testing.T, g *gateway, want ...string) string {
	t.Helper()
	body := scrapeMetrics(t, g)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	if t.Failed() {
		var ours []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "acme_gateway") {
				ours = append(ours, l)
			}
		}
		t.Logf("acme_gateway lines:\n%s", strings.Join(ours, "\n"))
	}
	return body
}
