package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// cachedAccount creates an account through s and reads it back, which
// keeps it in s's memory.
func cachedAccount(t *testing.T, s *Store, id string) *storage.Account {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "it trusts the accounts in memory", s.cached.Trusted)
	a := &storage.Account{ID: id, KeyThumbprint: "tp-" + id, KeyJWK: []byte(`{"kty":"EC"}`),
		Status: storage.StatusValid, CreatedAt: time.Now().UTC()}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := s.cached.Len(); n != 1 {
		t.Fatalf("%d accounts in memory after a read, want 1", n)
	}
	return a
}

// changeBySQL sets the account's status by hand, outside any store, and
// waits until s has forgotten it and reads the new status.
func changeBySQL(t *testing.T, s *Store, pool *pgxpool.Pool, id, status string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), "UPDATE accounts SET status = $3 WHERE namespace = $1 AND id = $2", s.ns, id, status); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "it forgets the account changed by SQL", func() bool { return s.cached.Len() == 0 })
	wantStatus(t, s, id, status)
}

func wantStatus(t *testing.T, s *Store, id, status string) {
	t.Helper()
	got, err := s.GetAccount(context.Background(), id)
	if err != nil || got.Status != status {
		t.Fatalf("GetAccount(%s) = %+v, %v; want status %s", id, got, err, status)
	}
}

func TestAccountWatch_ChangesAnywhereAreHeard(t *testing.T) {
	dsn := pgtest.Start(t)
	poolA, poolB := newPool(t, dsn), newPool(t, dsn)
	a := newStore(t, poolA, Options{Namespace: "shared"})
	b := newStore(t, poolB, Options{Namespace: "shared"})
	other := newStore(t, newPool(t, dsn), Options{Namespace: "other"})
	ctx := context.Background()

	acct := cachedAccount(t, b, "acct1")
	cachedAccount(t, other, "acct1") // the same id in another namespace

	// A change through another instance of the namespace.
	acct.Status = storage.StatusDeactivated
	if err := a.UpdateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "it forgets the account another instance changed", func() bool { return b.cached.Len() == 0 })
	wantStatus(t, b, "acct1", storage.StatusDeactivated)
	if other.cached.Len() != 1 {
		t.Fatal("a change in namespace shared emptied the memory of namespace other")
	}

	// A change by hand, outside any store.
	changeBySQL(t, b, poolA, "acct1", storage.StatusRevoked)

	// RefreshAccount reads the database whatever memory holds, and keeps
	// what it read.
	held, _ := other.cached.Get("acct1")
	held.Status = "stale"
	other.cached.Put(other.cached.Begin(), held)
	fresh, err := other.RefreshAccount(ctx, "acct1")
	if err != nil || fresh.Status != storage.StatusValid {
		t.Fatalf("RefreshAccount = %+v, %v; want the stored, valid account", fresh, err)
	}
	wantStatus(t, other, "acct1", storage.StatusValid)

	// Probes keep the memory trusted past trustFor.
	time.Sleep(trustFor + probeEvery)
	if !b.cached.Trusted() {
		t.Fatal("the accounts in memory are no longer trusted while the watch runs")
	}

	// A TRUNCATE empties every instance's memory, of every namespace.
	wantStatus(t, b, "acct1", storage.StatusRevoked)
	if _, err := poolA.Exec(ctx, "TRUNCATE accounts CASCADE"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a TRUNCATE empties the memory", func() bool { return b.cached.Len() == 0 && other.cached.Len() == 0 })
}

func TestAccountWatch_LostSessionStopsTheMemoryUntilListeningAgain(t *testing.T) {
	dsn := pgtest.Start(t)
	pool := newPool(t, dsn)
	s := newStore(t, pool, Options{Namespace: "ns"})
	cachedAccount(t, s, "acct1")

	var ended int
	if err := pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, watchName).Scan(&ended); err != nil || ended != 1 {
		t.Fatalf("ending the watch session: %d sessions, %v", ended, err)
	}
	waitFor(t, "it empties and distrusts its memory", func() bool { return !s.cached.Trusted() && s.cached.Len() == 0 })

	// Unheard, a change is read from the database at once.
	if _, err := pool.Exec(context.Background(), "UPDATE accounts SET status = 'deactivated' WHERE id = 'acct1'"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, "acct1", storage.StatusDeactivated)

	// Listening again, the store keeps accounts and hears of changes.
	waitFor(t, "it trusts its memory again", s.cached.Trusted)
	wantStatus(t, s, "acct1", storage.StatusDeactivated)
	if s.cached.Len() != 1 {
		t.Fatal("the account read after listening again is not in memory")
	}
	changeBySQL(t, s, pool, "acct1", storage.StatusRevoked)
}

func TestAccountWatch_ProbesThatDoNotReturnEndTheTrust(t *testing.T) {
	s := newStore(t, newPool(t, pgtest.Start(t)), Options{Namespace: "ns"})
	cachedAccount(t, s, "acct1")

	// A session that stays open but hears nothing, as behind a pooler that
	// drops notifications or on a half-open connection.
	drop := func(context.Context, string, string) error { return nil }
	s.probeSender.Store(&drop)
	lost := time.Now()
	waitFor(t, "it stops trusting its memory", func() bool { return !s.cached.Trusted() })
	if d, most := time.Since(lost), trustFor+probeEvery; d > most {
		t.Fatalf("trusted for %v after probes stopped returning, want at most %v (trustFor after the last probe sent)", d, most)
	}
	waitFor(t, "it empties its memory to listen again", func() bool { return s.cached.Len() == 0 })

	s.probeSender.Store(nil)
	waitFor(t, "it trusts its memory again once probes return", s.cached.Trusted)
}
