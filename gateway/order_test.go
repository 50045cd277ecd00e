package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestNewOrder_AcceptsNotBeforeWithinMaxBackdate(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	nb := time.Now().UTC().Add(-maxBackdate + 5*time.Minute).Truncate(time.Second)
	r := c.post(g.base+pathNewOrder, map[string]any{
		"identifiers": dnsIDs("skew.example.com"),
		"notBefore":   nb.Format(time.RFC3339),
	})
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder with notBefore %s ago: %d %s", maxBackdate-5*time.Minute, r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	if o.NotBefore != nb.Format(time.RFC3339) {
		t.Fatalf("order notBefore %q, want %q", o.NotBefore, nb.Format(time.RFC3339))
	}
}

func parseRFC3339(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestNewOrder_ReusesOnlyAuthorizationsThatOutliveTheOrder(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	c := g.newClient()
	c.register()
	name := "reuse.example.com"
	_, first := c.orderReady(name)
	authzURL := first.Authorizations[0]
	authzExpires := parseRFC3339(t, c.readAuthz(authzURL).Expires)
	orderLife := time.Duration(g.h.cfg.OrderLifetime)

	// With more than an order's lifetime left, it is reused, and the new
	// order expires no later than it.
	clock.Advance(time.Until(authzExpires) - orderLife - time.Minute)
	_, o := c.newOrderFor(name)
	if len(o.Authorizations) != 1 || o.Authorizations[0] != authzURL || o.Status != storage.StatusReady {
		t.Fatalf("authorization with %s left not reused: %+v", orderLife+time.Minute, o)
	}
	if exp := parseRFC3339(t, o.Expires); exp.After(authzExpires) {
		t.Fatalf("order reusing an authorization expires %s, after it (%s)", exp, authzExpires)
	}

	// With less, a new order gets a fresh pending authorization: reusing
	// it would let the ready order turn invalid before it expires.
	clock.Advance(2 * time.Minute)
	_, o = c.newOrderFor(name)
	if len(o.Authorizations) != 1 || o.Authorizations[0] == authzURL {
		t.Fatalf("authorization expiring within the order's lifetime reused: %+v", o)
	}
	if a := c.readAuthz(o.Authorizations[0]); a.Status != storage.StatusPending || o.Status != storage.StatusPending {
		t.Fatalf("new order %s with authorization %s, want both pending", o.Status, a.Status)
	}
}

func TestNewOrder_ExpiresNoLaterThanItsAuthorizations(t *testing.T) {
	g := newGateway(t)
	g.h.cfg.AuthzLifetime = g.h.cfg.OrderLifetime / 2
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("short.example.com")
	orderExpires := parseRFC3339(t, o.Expires)
	authzExpires := parseRFC3339(t, c.readAuthz(o.Authorizations[0]).Expires)
	if orderExpires.After(authzExpires) {
		t.Fatalf("order expires %s, after its authorization (%s)", orderExpires, authzExpires)
	}
}

// fixedValidityIssuer is the test CA as an issuer whose CA sets the
// validity (MaxLifetime 0), as CM's token procedures do.
type fixedValidityIssuer struct{ *testIssuer }

func (fixedValidityIssuer) MaxLifetime() time.Duration { return 0 }

// With an issuer that sets the validity itself, an order that asks for one
// is refused rather than silently given another.
func TestNewOrder_RequestedValidityRefusedWhenTheCASetsIt(t *testing.T) {
	g := newGateway(t)
	g.h.issuer = fixedValidityIssuer{g.issuer}
	c := g.newClient()
	c.register()
	ids := []identifier{{Type: "dns", Value: "v.example.com"}}
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": ids, "notAfter": time.Now().Add(time.Hour).Format(time.RFC3339)})
	if r.status != http.StatusBadRequest || r.problemType() != problemNS+"malformed" {
		t.Fatalf("order asking for a validity: %d %s, want malformed", r.status, r.body)
	}
	if r = c.post(g.base+pathNewOrder, map[string]any{"identifiers": ids}); r.status != http.StatusCreated {
		t.Fatalf("order without a validity: %d %s", r.status, r.body)
	}
}
