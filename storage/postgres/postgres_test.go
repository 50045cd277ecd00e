package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
	"github.com/caddyacmegw/caddyacmegw/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("pgxpool.New: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newStore returns a store on pool without background cleanup, closed
// when t ends.
func newStore(t testing.TB, pool *pgxpool.Pool, opts Options) *Store {
	t.Helper()
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = -1
	}
	s, err := New(t.Context(), pool, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Each subtest gets a namespace of its own on one database.
func TestConformance(t *testing.T) {
	pool := newPool(t, pgtest.Start(t))
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t, pool, Options{Namespace: rand.Text()})
	})
}

func TestNew_InstancesStartingTogetherMigrateOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	const instances = 4
	var (
		stores [instances]*Store
		errs   [instances]error
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range instances {
		pool := newPool(t, dsn) // one pool per instance
		wg.Go(func() {
			<-start
			stores[i], errs[i] = New(t.Context(), pool, Options{Namespace: "shared", CleanupInterval: -1})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New(instance %d): %v", i, err)
		}
		t.Cleanup(stores[i].Close)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var rows, distinct int
	if err := stores[0].pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Fatalf("schema_migrations has %d rows, %d versions; want %d migrations applied once", rows, distinct, len(ms))
	}

	// They share the namespace's nonce key.
	n, err := stores[0].NewNonce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stores[instances-1].RedeemNonce(t.Context(), n); err != nil {
		t.Fatalf("RedeemNonce at another instance: %v", err)
	}

	// A later start finds nothing to do.
	again := newStore(t, newPool(t, dsn), Options{Namespace: "shared"})
	if err := again.pool.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil || rows != len(ms) {
		t.Fatalf("schema_migrations after a restart: %d rows, %v", rows, err)
	}
}

func TestNonces_RedeemOnceAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	a := newStore(t, newPool(t, dsn), Options{Namespace: "gw"})
	b := newStore(t, newPool(t, dsn), Options{Namespace: "gw"})
	other := newStore(t, newPool(t, dsn), Options{Namespace: "other-gw"})

	n, err := a.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.RedeemNonce(ctx, n); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RedeemNonce in another namespace = %v, want ErrNotFound", err)
	}
	if err := b.RedeemNonce(ctx, n); err != nil {
		t.Fatalf("RedeemNonce at instance B of a nonce from A: %v", err)
	}
	for name, s := range map[string]*Store{"A": a, "B": b} {
		if err := s.RedeemNonce(ctx, n); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("replay at %s = %v, want ErrNotFound", name, err)
		}
	}

	// A tampered nonce fails its MAC; so does one spelled differently.
	fresh, _ := a.NewNonce(ctx)
	for _, bad := range []string{fresh[:len(fresh)-1] + flip(fresh[len(fresh)-1]), fresh[1:], fresh + "A", ""} {
		if err := b.RedeemNonce(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RedeemNonce(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	if err := b.RedeemNonce(ctx, fresh); err != nil {
		t.Errorf("RedeemNonce(fresh) after tampered copies: %v", err)
	}

	// Expiry is the nonce's own: an instance whose clock is past it refuses it.
	old, _ := a.NewNonce(ctx)
	late := newStore(t, newPool(t, dsn), Options{Namespace: "gw", Now: func() time.Time { return time.Now().Add(DefaultNonceLifetime + time.Second) }})
	if err := late.RedeemNonce(ctx, old); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RedeemNonce(expired) = %v, want ErrNotFound", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestNonces_ConcurrentRedeemsAcrossInstancesHaveOneWinner(t *testing.T) {
	dsn := pgtest.Start(t)
	stores := []*Store{
		newStore(t, newPool(t, dsn), Options{Namespace: "gw"}),
		newStore(t, newPool(t, dsn), Options{Namespace: "gw"}),
	}
	for range 10 {
		n, err := stores[0].NewNonce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wins := raceStores(t, 8, func(i int) error { return stores[i%2].RedeemNonce(t.Context(), n) }, storage.ErrNotFound)
		if len(wins) != 1 {
			t.Fatalf("%d redeems of one nonce succeeded, want 1", len(wins))
		}
	}
}

// raceStores runs try(i) for i in [0, n) at once and returns the indexes
// that returned nil; an error other than lose fails t.
func raceStores(t *testing.T, n int, try func(i int) error, lose error) []int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = try(i)
		})
	}
	close(start)
	wg.Wait()
	var wins []int
	for i, err := range errs {
		switch {
		case err == nil:
			wins = append(wins, i)
		case !errors.Is(err, lose):
			t.Errorf("racer %d: %v, want nil or %v", i, err, lose)
		}
	}
	return wins
}

// Two instances finalizing one order, and others updating it, from the
// same read: one write wins, and at most the winner's certificate exists.
func TestFinalize_RaceAcrossInstancesHasOneWinner(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	stores := []*Store{
		newStore(t, newPool(t, dsn), Options{Namespace: "gw"}),
		newStore(t, newPool(t, dsn), Options{Namespace: "gw"}),
	}
	acct := &storage.Account{ID: "acct", KeyThumbprint: "thumb", Status: storage.StatusValid, CreatedAt: time.Now()}
	if err := stores[0].CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		o := &storage.Order{
			ID: fmt.Sprintf("order-%d", round), AccountID: acct.ID, Status: storage.StatusProcessing,
			Identifiers: []storage.Identifier{{Type: "dns", Value: "example.com"}},
			Expires:     time.Now().Add(time.Hour), CreatedAt: time.Now(), UpdatedAt: time.Now(),
		}
		if err := stores[0].CreateOrder(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
		read, err := stores[1].GetOrder(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		const racers = 8
		var orders [racers]*storage.Order
		for i := range racers {
			c := *read
			orders[i] = &c
		}
		serial := func(i int) string { return fmt.Sprintf("%x%02x", round+1, i) }
		wins := raceStores(t, racers, func(i int) error {
			s := stores[i%2]
			if i < racers-2 { // most finalize; two give up on the order
				orders[i].Status, orders[i].CertificateSerial = storage.StatusValid, serial(i)
				c := &storage.Certificate{Serial: serial(i), AccountID: acct.ID, OrderID: o.ID, Names: []string{"example.com"}, Status: storage.StatusValid, IssuedAt: time.Now()}
				return s.StoreCertificate(ctx, c, orders[i])
			}
			orders[i].Status = storage.StatusInvalid
			return s.UpdateOrder(ctx, orders[i])
		}, storage.ErrConflict)
		if len(wins) != 1 {
			t.Fatalf("round %d: %d racers won, want 1", round, len(wins))
		}
		w := wins[0]
		var certs int
		if err := stores[0].pool.QueryRow(ctx, "SELECT count(*) FROM certificates WHERE namespace = 'gw' AND order_id = $1", o.ID).Scan(&certs); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[w < racers-2]; certs != want {
			t.Fatalf("round %d: winner %d, %d certificates for the order, want %d", round, w, certs, want)
		}
		got, err := stores[0].GetOrder(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != orders[w].Status || got.CertificateSerial != orders[w].CertificateSerial || got.Version != read.Version+1 {
			t.Fatalf("round %d: order after race = %+v, want the winner's %+v", round, got, orders[w])
		}
	}
}
