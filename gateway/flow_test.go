package gateway

import (
	"net/http"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

func TestFlow_IssueDownloadRevoke(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	_, leaf, _ := c.issue("a.example.com", "b.example.com")
	r := c.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf), "reason": 4})
	if r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	r = c.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf)})
	if got := r.problemType(); got != problemNS+"alreadyRevoked" {
		t.Fatalf("second revoke: %d %s", r.status, r.body)
	}
	if issued, revoked := g.issuer.counts(); issued != 1 || revoked != 1 {
		t.Fatalf("issuer counts: issued %d revoked %d", issued, revoked)
	}
}

func TestFlow_WildcardOffersOnlyDNS01(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "*.example.com"}}})
	var o orderBody
	r.decode(t, &o)
	var a authzBody
	c.post(o.Authorizations[0], nil).decode(t, &a)
	if len(a.Challenges) != 1 || a.Challenges[0].Type != challengeDNS01 || !a.Wildcard || a.Identifier.Value != "example.com" {
		t.Fatalf("wildcard authz: %+v", a)
	}
}

func TestFlow_FailedValidationInvalidatesOrder(t *testing.T) {
	g := newGateway(t)
	g.valid.failWith(validate.KindIncorrectResponse)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "x.example.com"}}})
	url := r.header.Get("Location")
	var o orderBody
	r.decode(t, &o)
	var a authzBody
	c.post(o.Authorizations[0], nil).decode(t, &a)
	c.post(a.Challenges[0].URL, map[string]any{})
	a = c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	if a.Challenges[0].Error == nil || a.Challenges[0].Error.Type != problemNS+"incorrectResponse" {
		t.Fatalf("challenge error: %+v", a.Challenges[0])
	}
	c.post(url, nil).decode(t, &o)
	if o.Status != storage.StatusInvalid {
		t.Fatalf("order is %s", o.Status)
	}
}

func TestFlow_ValidAuthorizationIsReused(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	_, first := c.orderReady("reuse.example.com")
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "reuse.example.com"}}})
	var second orderBody
	r.decode(t, &second)
	if second.Status != storage.StatusReady || second.Authorizations[0] != first.Authorizations[0] {
		t.Fatalf("second order %+v does not reuse %v", second, first.Authorizations)
	}
}
