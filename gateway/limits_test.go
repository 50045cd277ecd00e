package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

// checkRateLimited fails t unless r is the refusal of limit name within a
// window of at most window.
func checkRateLimited(t *testing.T, r *reply, name string, window time.Duration) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.problemType() != ProblemRateLimited.URN() {
		t.Fatalf("got %d %s, want 429 rateLimited", r.status, r.body)
	}
	var p Problem
	r.decode(t, &p)
	if !strings.Contains(p.Detail, name) {
		t.Fatalf("detail %q does not name the limit %s", p.Detail, name)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > window {
		t.Fatalf("Retry-After %q, want 1..%d seconds", r.header.Get("Retry-After"), int(window.Seconds()))
	}
}

// orderCount is how many orders the account of c has.
func orderCount(t *testing.T, c *client) int {
	t.Helper()
	ids, _, err := c.g.store.ListOrders(context.Background(), c.kid[strings.LastIndexByte(c.kid, '/')+1:], "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func TestLimits_RefuseOverTheLimit(t *testing.T) {
	one := Limit{Count: 1, Window: time.Hour}
	tests := []struct {
		name string
		set  func(*Limits)
		// run makes the requests the limit allows, then the one it
		// refuses, which it returns; it checks that the refused one
		// changed nothing.
		run func(t *testing.T, g *gateway) (refused *reply, unchanged func())
	}{{
		name: limitOrders,
		set:  func(l *Limits) { l.OrdersPerAccount = one },
		run: func(t *testing.T, g *gateway) (*reply, func()) {
			c := g.newClient()
			c.register()
			c.newOrderFor("a.example.com")
			r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("b.example.com")})
			return r, func() {
				if n := orderCount(t, c); n != 1 {
					t.Fatalf("account has %d orders, want 1", n)
				}
			}
		},
	}, {
		name: limitPendingAuthz,
		set:  func(l *Limits) { l.PendingAuthzPerAccount = Limit{Count: 2, Window: time.Hour} },
		run: func(t *testing.T, g *gateway) (*reply, func()) {
			c := g.newClient()
			c.register()
			c.newOrderFor("a.example.com", "b.example.com")
			r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("c.example.com")})
			return r, func() {
				if n := orderCount(t, c); n != 1 {
					t.Fatalf("account has %d orders, want 1", n)
				}
			}
		},
	}, {
		name: limitFailed,
		set:  func(l *Limits) { l.FailedValidationsPerName = one },
		run: func(t *testing.T, g *gateway) (*reply, func()) {
			c := g.newClient()
			c.register()
			g.valid.failWith(validate.KindIncorrectResponse)
			_, o := c.newOrderFor("a.example.com")
			a := c.readAuthz(o.Authorizations[0])
			c.post(a.Challenges[0].URL, map[string]any{})
			c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
			r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("b.example.com", "a.example.com")})
			return r, func() {
				if n := orderCount(t, c); n != 1 {
					t.Fatalf("account has %d orders, want 1", n)
				}
				c.newOrderFor("b.example.com") // another name is not limited
				other := g.newClient()
				other.register()
				other.newOrderFor("a.example.com") // nor another account
			}
		},
	}, {
		name: limitAccounts,
		set:  func(l *Limits) { l.AccountsPerIP = one },
		run: func(t *testing.T, g *gateway) (*reply, func()) {
			g.newClient().register()
			c := g.newClient()
			r := c.post(g.base+pathNewAccount, map[string]any{"termsOfServiceAgreed": true})
			return r, func() {
				again := c.post(g.base+pathNewAccount, map[string]any{"onlyReturnExisting": true})
				if again.problemType() != ProblemAccountDoesNotExist.URN() {
					t.Fatalf("refused key has an account: %d %s", again.status, again.body)
				}
			}
		},
	}, {
		name: limitCertificates,
		set:  func(l *Limits) { l.CertificatesPerRegistration = one },
		run: func(t *testing.T, g *gateway) (*reply, func()) {
			c := g.newClient()
			c.register()
			c.issue("a.example.com")
			url, o := c.orderReady("b.example.com")
			csr, _ := csrFor(t, "b.example.com")
			r := c.post(o.Finalize, map[string]string{"csr": b64(csr)})
			return r, func() {
				c.post(url, nil).decode(t, &o)
				if issued, _ := g.issuer.counts(); o.Status != storage.StatusReady || issued != 1 {
					t.Fatalf("order %s and %d issued, want ready and 1", o.Status, issued)
				}
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			tt.set(&g.h.cfg.Limits)
			r, unchanged := tt.run(t, g)
			checkRateLimited(t, r, tt.name, time.Hour)
			unchanged()
		})
	}
}

func TestLimits_OffAllowsAll(t *testing.T) {
	g := newGateway(t)
	g.h.cfg.Limits.OrdersPerAccount = Limit{Count: -1, Window: time.Hour}
	c := g.newClient()
	c.register()
	for range 3 {
		c.newOrderFor("a.example.com")
	}
}

func TestLimits_DefaultsFilledIn(t *testing.T) {
	g := newGateway(t)
	l := g.h.Config().Limits
	for name, got := range map[string]Limit{
		limitOrders: l.OrdersPerAccount, limitPendingAuthz: l.PendingAuthzPerAccount,
		limitFailed: l.FailedValidationsPerName, limitAccounts: l.AccountsPerIP,
		limitCertificates: l.CertificatesPerRegistration,
	} {
		if got.Count <= 0 || got.Window <= 0 {
			t.Errorf("%s default is %v", name, got)
		}
	}
}

func TestMemoryCounter_WindowsAndGivingBack(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	c := NewMemoryCounter(func() time.Time { return now })
	l := Limit{Count: 2, Window: time.Hour}
	add := func(n int) bool {
		start, _ := l.window(now)
		ok, err := c.AddCount(ctx, "x", "k", start, l.Window, n, l.Count)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !add(1) || !add(1) || add(1) {
		t.Fatal("want two of two allowed, the third refused")
	}
	if !add(-1) || !add(1) || add(1) {
		t.Fatal("a slot given back is one slot again")
	}
	now = now.Add(time.Hour)
	if !add(2) {
		t.Fatal("a new window starts empty")
	}
	start, _ := l.window(now)
	if n, _ := c.HighestCount(ctx, "x", []string{"other", "k"}, start); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
}

// An authorization validated, failed or deactivated is no longer pending:
// its count is given back.
func TestLimits_DecidedAuthorizationsAreNoLongerPending(t *testing.T) {
	g := newGateway(t)
	g.h.cfg.Limits.PendingAuthzPerAccount = Limit{Count: 2, Window: g.h.cfg.AuthzLifetime}
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("a.example.com", "b.example.com")
	a := c.readAuthz(o.Authorizations[0])
	c.post(a.Challenges[0].URL, map[string]any{})
	c.waitAuthz(o.Authorizations[0], storage.StatusValid)
	if r := c.post(o.Authorizations[1], map[string]any{"status": "deactivated"}); r.status != http.StatusOK {
		t.Fatalf("deactivating: %d %s", r.status, r.body)
	}
	c.newOrderFor("c.example.com", "d.example.com")
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("e.example.com")})
	checkRateLimited(t, r, limitPendingAuthz, g.h.cfg.AuthzLifetime)
}
