package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two Servers on one PostgreSQL, each with a store of its own, count
// together: an account at its limit at one is over it at the other.
func TestLimits_SharedByServersOnPostgres(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	g := &gateway{t: t, issuer: newTestIssuer(t), valid: &testValidator{}}
	var servers [2]*Server
	for i := range servers {
		store, err := postgres.New(t.Context(), pool, postgres.Options{Namespace: "gw", CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		servers[i], err = New(Config{
			PathPrefix: "/acme", Store: store, Nonces: store, Counter: store,
			Issuer: g.issuer, Validator: g.valid,
			Limits: Limits{OrdersPerAccount: Limit{Count: 2, Window: time.Hour}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(servers[i].Close)
	}
	// One URL, as behind a load balancer; serving says which Server
	// answers.
	var serving atomic.Int32
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		servers[serving.Load()].ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	g.base = g.srv.URL + "/acme"
	g.h = servers[0]

	c := g.newClient()
	c.register()
	c.newOrderFor("a.example.com")
	serving.Store(1)
	c.newOrderFor("b.example.com")
	serving.Store(0)
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("c.example.com")})
	checkRateLimited(t, r, limitOrders, time.Hour)
	serving.Store(1)
	r = c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("c.example.com")})
	checkRateLimited(t, r, limitOrders, time.Hour)
}
