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
	g, serving := serversOnPostgres(t, Config{Limits: Limits{OrdersPerAccount: Limit{Count: 2, Window: time.Hour}}})

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

// serversOnPostgres serves two Servers of cfg, each with a store of its
// own on one fresh PostgreSQL database, at one URL, as behind a load
// balancer: serving says which of them answers. g.h is the first; g.store
// is nil, and g.pgStores are the two stores.
func serversOnPostgres(t *testing.T, cfg Config) (*gateway, *atomic.Int32) {
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
		g.pgStores = append(g.pgStores, store)
		c := cfg
		c.PathPrefix, c.Store, c.Nonces, c.Counter = "/acme", store, store, store
		c.Issuer, c.Validator = g.issuer, g.valid
		servers[i], err = New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(servers[i].Close)
	}
	serving := new(atomic.Int32)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		servers[serving.Load()].ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	g.base = g.srv.URL + "/acme"
	g.h = servers[0]
	return g, serving
}
