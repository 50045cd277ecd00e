package gateway

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func (c *client) newOrderReplacing(certID string, names ...string) *reply {
	c.g.t.Helper()
	return c.post(c.g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs(names...), "replaces": certID})
}

// An order naming the certificate it renews is recorded, and so, at
// issuance, is which certificate replaced which; the old one cannot be
// replaced twice.
func TestReplaces_RecordedAtIssuanceAndRefusedTwice(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	old := c.issueLeaf("renew.example.com", "www.renew.example.com")
	oldID := certIDOf(old)

	r := c.newOrderReplacing(oldID, "renew.example.com")
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder with replaces: %d %s", r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	if o.Replaces != oldID {
		t.Fatalf("order replaces = %q, want %q", o.Replaces, oldID)
	}
	stored, err := g.store.GetOrder(t.Context(), lastPathSegment(r.header.Get("Location")))
	if err != nil || stored.Replaces != old.SerialNumber.Text(16) {
		t.Fatalf("stored order replaces = %+v, %v; want serial %x", stored, err, old.SerialNumber)
	}
	for _, az := range o.Authorizations {
		a := c.readAuthz(az)
		if a.Status != storage.StatusValid {
			t.Fatalf("authorization of a name issued before is %s", a.Status)
		}
	}
	csr, _ := csrFor(t, "renew.example.com")
	if r := c.post(o.Finalize, map[string]string{"csr": b64(csr)}); r.status != http.StatusOK {
		t.Fatalf("finalize: %d %s", r.status, r.body)
	}
	c.post(r.header.Get("Location"), nil).decode(t, &o)
	newSerial := lastPathSegment(o.Certificate)
	newCert, err := g.store.GetCertificate(t.Context(), newSerial)
	if err != nil {
		t.Fatal(err)
	}
	oldCert := g.storedCertificate(old)
	if newCert.Replaces != oldCert.Serial || oldCert.ReplacedBy != newSerial {
		t.Fatalf("new certificate replaces %q, old replaced by %q; want %q and %q",
			newCert.Replaces, oldCert.ReplacedBy, oldCert.Serial, newSerial)
	}

	r = c.newOrderReplacing(oldID, "renew.example.com")
	if r.status != http.StatusConflict || r.problemType() != ProblemAlreadyReplaced.URN() {
		t.Fatalf("second order replacing it: %d %s, want 409 alreadyReplaced", r.status, r.body)
	}
}

func TestReplaces_Refusals(t *testing.T) {
	g := newGateway(t)
	c, other := g.newClient(), g.newClient()
	c.register()
	other.register()
	old := c.issueLeaf("mine.example.com")
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name    string
		client  *client
		certID  string
		names   []string
		status  int
		problem ProblemType
	}{
		{"malformed", c, "nope", []string{"mine.example.com"}, http.StatusBadRequest, ProblemMalformed},
		{"unknown", c, enc(old.AuthorityKeyId) + "." + enc([]byte{0x42}), []string{"mine.example.com"}, http.StatusNotFound, ProblemMalformed},
		{"another account's", other, certIDOf(old), []string{"mine.example.com"}, http.StatusForbidden, ProblemUnauthorized},
		{"no shared identifier", c, certIDOf(old), []string{"other.example.com"}, http.StatusBadRequest, ProblemMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.client.newOrderReplacing(tc.certID, tc.names...)
			if r.status != tc.status || r.problemType() != tc.problem.URN() {
				t.Fatalf("newOrder: %d %s, want %d %s", r.status, r.body, tc.status, tc.problem)
			}
		})
	}
	if _, o := c.newOrderFor("mine.example.com"); o.Replaces != "" {
		t.Fatalf("an order without replaces shows replaces %q", o.Replaces)
	}
}

func lastPathSegment(u string) string { return u[strings.LastIndex(u, "/")+1:] }

// An order not yet issued claims the certificate it replaces: a second
// order naming it is refused while the first lives, and accepted once the
// first is invalid; a claim by an order not found (deleted) holds nothing.
func TestReplaces_LiveOrderClaimsCertificate(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	old := c.issueLeaf("claim.example.com")
	oldID, serial := certIDOf(old), old.SerialNumber.Text(16)
	ctx := t.Context()

	first := c.newOrderReplacing(oldID, "claim.example.com")
	if first.status != http.StatusCreated {
		t.Fatalf("first order replacing it: %d %s", first.status, first.body)
	}
	r := c.newOrderReplacing(oldID, "claim.example.com")
	if r.status != http.StatusConflict || r.problemType() != ProblemAlreadyReplaced.URN() {
		t.Fatalf("second order while the first lives: %d %s, want 409 alreadyReplaced", r.status, r.body)
	}

	o, err := g.store.GetOrder(ctx, lastPathSegment(first.header.Get("Location")))
	if err != nil {
		t.Fatal(err)
	}
	o.Status = storage.StatusInvalid
	if err := g.store.UpdateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	second := c.newOrderReplacing(oldID, "claim.example.com")
	if second.status != http.StatusCreated {
		t.Fatalf("order after the first turned invalid: %d %s", second.status, second.body)
	}
	if claim, err := g.store.ReplacementClaim(ctx, serial); err != nil || claim != lastPathSegment(second.header.Get("Location")) {
		t.Fatalf("claim = %q, %v; want the second order", claim, err)
	}

	// A claim naming an order that is not found.
	other := c.issueLeaf("claim2.example.com")
	if err := g.store.ClaimReplacement(ctx, other.SerialNumber.Text(16), NewID(), ""); err != nil {
		t.Fatal(err)
	}
	if r := c.newOrderReplacing(certIDOf(other), "claim2.example.com"); r.status != http.StatusCreated {
		t.Fatalf("order over a claim of no stored order: %d %s", r.status, r.body)
	}
}

// heldCreateStore holds the first CreateOrder of an order that replaces a
// certificate until release is closed, telling entered when it is held.
type heldCreateStore struct {
	storage.Store
	held             atomic.Bool
	entered, release chan struct{}
}

func (s *heldCreateStore) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	if o.Replaces != "" && s.held.CompareAndSwap(false, true) {
		close(s.entered)
		select {
		case <-s.release:
		case <-time.After(5 * time.Second): // let a broken test fail, not hang
		}
	}
	return s.Store.CreateOrder(ctx, o, authzs)
}

// Of two orders replacing one certificate, exactly one wins, also when the
// second arrives while the first is being stored; the other is refused
// and leaves no live order behind.
func TestReplaces_OrderBeingStoredStillClaimsOnce(t *testing.T) {
	g := newGateway(t)
	checkOneOfTwoRacingOrdersWins(t, g, g.store, func() {})
}

// checkOneOfTwoRacingOrdersWins holds the storing of an order replacing a
// certificate at g.h while a second order replacing it is placed, after
// toSecond (which may turn the requests to another server): exactly one
// of the two is accepted. store reads what they left.
func checkOneOfTwoRacingOrdersWins(t *testing.T, g *gateway, store storage.Store, toSecond func()) {
	t.Helper()
	c := g.newClient()
	c.register()
	old := c.issueLeaf("race.example.com")
	oldID, serial := certIDOf(old), old.SerialNumber.Text(16)
	held := &heldCreateStore{Store: g.h.store, entered: make(chan struct{}), release: make(chan struct{})}
	g.h.store = held

	firstDone := make(chan *reply, 1)
	// fresh.example.com needs an authorization of its own for each order.
	go func() { firstDone <- c.newOrderReplacing(oldID, "race.example.com", "fresh.example.com") }()
	select {
	case <-held.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first order was never stored")
	}
	toSecond()
	second := c.newOrderReplacing(oldID, "race.example.com", "fresh.example.com")
	close(held.release)
	first := <-firstDone

	var winner *reply
	for _, r := range []*reply{first, second} {
		switch {
		case r.status == http.StatusCreated && winner == nil:
			winner = r
		case r.status == http.StatusConflict && r.problemType() == ProblemAlreadyReplaced.URN():
		default:
			t.Fatalf("first %d %s, second %d %s; want one 201 and one 409 alreadyReplaced",
				first.status, first.body, second.status, second.body)
		}
	}
	if winner == nil {
		t.Fatalf("neither order won: %s, %s", first.body, second.body)
	}
	winnerID := lastPathSegment(winner.header.Get("Location"))
	ctx := t.Context()
	if claim, err := store.ReplacementClaim(ctx, serial); err != nil || claim != winnerID {
		t.Fatalf("claim = %q, %v; want the winning order %s", claim, err, winnerID)
	}
	ids, _, err := store.ListOrders(ctx, lastPathSegment(c.kid), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		o, err := store.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if o.Replaces != serial || id == winnerID {
			continue
		}
		if o.Status != storage.StatusInvalid {
			t.Fatalf("the losing order %s is %s, want invalid", id, o.Status)
		}
		for _, aid := range o.AuthzIDs {
			a, err := store.GetAuthz(ctx, aid)
			if err != nil {
				t.Fatal(err)
			}
			if a.Identifier.Value == "fresh.example.com" && a.Status != storage.StatusDeactivated {
				t.Fatalf("the losing order's new authorization is %s, want deactivated", a.Status)
			}
		}
	}
}

// An order that lost the claim on the certificate it replaces, but was
// not made invalid, is not issued.
func TestReplaces_FinalizeRefusesOrderThatLostTheClaim(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	old := c.issueLeaf("lost.example.com")
	r := c.newOrderReplacing(certIDOf(old), "lost.example.com")
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder: %d %s", r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	serial, id := old.SerialNumber.Text(16), lastPathSegment(r.header.Get("Location"))
	if err := g.store.ClaimReplacement(t.Context(), serial, NewID(), id); err != nil {
		t.Fatal(err)
	}
	csr, _ := csrFor(t, "lost.example.com")
	f := c.post(o.Finalize, map[string]string{"csr": b64(csr)})
	if f.status != http.StatusConflict || f.problemType() != ProblemAlreadyReplaced.URN() {
		t.Fatalf("finalize: %d %s, want 409 alreadyReplaced", f.status, f.body)
	}
}
