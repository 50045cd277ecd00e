package integration

import (
	"crypto/ecdsa"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

// The instances of a gateway on one database count its rate limits
// together: an account at its order limit through both instances is over
// it at each.
func TestMultiInstance_LimitsAreSharedByInstances(t *testing.T) {
	e := startTwoInstancesWith(t, "limits {\n\t\t\torders_per_account 2 1h\n\t\t}")
	c, _ := acmezClient(e.Front, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	hc := e.Front.G.HTTPClient()
	key := acct.PrivateKey.(*ecdsa.PrivateKey)
	newOrderURL := e.BaseURL + "/new-order"

	newOrder := func(i int, name string) rawResponse {
		t.Helper()
		nonce, err := freshNonce(hc, e.Instances[i]+"/new-nonce")
		if err != nil {
			t.Fatal(err)
		}
		payload := []byte(`{"identifiers":[{"type":"dns","value":"` + name + `"}]}`)
		resp, err := postBody(t.Context(), hc, e.direct(i, newOrderURL), signJWS(t, key, acct.Location, nonce, newOrderURL, payload))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i, name := range []string{"a.example.com", "b.example.com"} {
		if r := newOrder(i, name); r.Status != http.StatusCreated {
			t.Fatalf("order %d at instance %d: HTTP %d %s", i+1, i, r.Status, r.Body)
		}
	}
	for i := range e.Instances {
		r := newOrder(i, "c.example.com")
		secs, _ := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Status != http.StatusTooManyRequests || problemType(r.Body) != "urn:ietf:params:acme:error:rateLimited" ||
			!strings.Contains(string(r.Body), "orders_per_account") || secs < 1 || secs > 3600 {
			t.Fatalf("third order at instance %d: HTTP %d, Retry-After %q, %s; want 429 rateLimited naming orders_per_account",
				i, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
}
