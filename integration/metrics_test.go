package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

// After an issuance, Caddy's /metrics shows the gateway's counters moved:
// requests by resource, the certificate, the validation and the issuer
// call, each labelled with the gateway's name.
func TestMetrics_CaddyServesTheGatewaysCounters(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acmezObtain(t, c, acmezAccount(t, c), "metrics.example.com")

	resp, err := http.Get("http://" + e.G.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`acme_gateway_certificates_issued_total{gateway="default"} 1`,
		`acme_gateway_requests_total{gateway="default",problem="",resource="/new-account"} 1`,
		`acme_gateway_requests_total{gateway="default",problem="",resource="/order/{id}/finalize"} 1`,
		`acme_gateway_validations_total{challenge="http-01",gateway="default",problem=""} 1`,
		`acme_gateway_issuer_calls_total{gateway="default",outcome="issued"} 1`,
		`acme_gateway_issuance_seconds_count{gateway="default"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		var ours []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "acme_gateway") {
				ours = append(ours, l)
			}
		}
		t.Logf("acme_gateway lines:\n%s", strings.Join(ours, "\n"))
	}
}
