package postgres

import (
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// count returns how many rows of the namespace "gw" a table holds.
func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE namespace = 'gw'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCleanup_DeletesExpiredInBatchesUnderLock(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	now := time.Now()
	s := newStore(t, newPool(t, dsn), Options{Namespace: "gw", Now: func() time.Time { return now }})
	peer := newStore(t, newPool(t, dsn), Options{Namespace: "gw", Now: func() time.Time { return now }})

	// 2500 used nonces long expired, 5 expired within the skew margin.
	_, err := s.pool.Exec(ctx, `INSERT INTO nonces_used (namespace, nonce, expires)
		SELECT 'gw', decode(lpad(to_hex(g), 32, '0'), 'hex'), CASE WHEN g <= 2500 THEN $1::timestamptz ELSE $2::timestamptz END
		FROM generate_series(1, 2505) AS g`, now.Add(-time.Hour), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	acct := &storage.Account{ID: "acct", KeyThumbprint: "thumb", Status: storage.StatusValid, CreatedAt: now}
	if err := s.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	longAgo, yesterday := now.Add(-8*24*time.Hour), now.Add(-24*time.Hour)
	order := func(id, status, authzStatus string, expires time.Time) {
		t.Helper()
		a := &storage.Authorization{ID: "authz-" + id, AccountID: acct.ID, Identifier: storage.Identifier{Type: "dns", Value: id + ".example"},
			Status: authzStatus, Expires: expires}
		o := &storage.Order{ID: id, AccountID: acct.ID, Status: status, Identifiers: []storage.Identifier{a.Identifier},
			AuthzIDs: []string{a.ID}, Expires: expires, CreatedAt: expires.Add(-time.Hour), UpdatedAt: expires.Add(-time.Hour)}
		if err := s.CreateOrder(ctx, o, []*storage.Authorization{a}); err != nil {
			t.Fatal(err)
		}
		if status == storage.StatusValid {
			c := &storage.Certificate{Serial: "ce" + id[len(id)-1:], AccountID: acct.ID, OrderID: o.ID, Status: storage.StatusValid,
				IssuedAt: o.UpdatedAt, NotBefore: o.UpdatedAt, NotAfter: longAgo.Add(time.Hour)}
			o.CertificateSerial = c.Serial
			if err := s.StoreCertificate(ctx, c, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	order("gone1", storage.StatusPending, storage.StatusInvalid, longAgo) // both deleted
	order("kept2", storage.StatusValid, storage.StatusValid, longAgo)     // valid: kept
	order("kept3", storage.StatusInvalid, storage.StatusPending, yesterday)
	order("kept4", storage.StatusPending, storage.StatusPending, now.Add(time.Hour))

	// Another instance holds the lock: nothing happens.
	conn, err := peer.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", peer.cleanupLock()); err != nil {
		t.Fatal(err)
	}
	res, err := s.Cleanup(ctx)
	if err != nil || res != (CleanupResult{}) {
		t.Fatalf("Cleanup while another instance holds the lock = %+v, %v; want nothing done", res, err)
	}
	if n := count(t, s, "nonces_used"); n != 2505 {
		t.Fatalf("nonces_used after a locked-out Cleanup: %d rows, want 2505", n)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", peer.cleanupLock()); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	res, err = s.Cleanup(ctx)
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	// Nonces in batches of 1000, 1000 and 500; one batch each for the rest.
	want := CleanupResult{Locked: true, Nonces: 2500, Orders: 1, Authzs: 1, Batches: 6}
	if res != want {
		t.Fatalf("Cleanup = %+v, want %+v", res, want)
	}
	for table, n := range map[string]int{"nonces_used": 5, "orders": 3, "authzs": 3, "certificates": 1, "accounts": 1} {
		if got := count(t, s, table); got != n {
			t.Errorf("%s after Cleanup: %d rows, want %d", table, got, n)
		}
	}
	if _, err := s.GetOrder(ctx, "gone1"); err == nil {
		t.Error("expired pending order survived Cleanup")
	}
	if _, err := s.GetAuthz(ctx, "authz-kept2"); err != nil {
		t.Errorf("valid authz of a valid order: %v", err)
	}

	// The lock is free again, for the peer too.
	if res, err := peer.Cleanup(ctx); err != nil || !res.Locked || res.Nonces+res.Orders+res.Authzs != 0 {
		t.Fatalf("second Cleanup = %+v, %v; want locked, nothing left", res, err)
	}
}

func TestCleanup_RunsInBackground(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	s := newStore(t, newPool(t, dsn), Options{Namespace: "gw", CleanupInterval: 20 * time.Millisecond})
	if _, err := s.pool.Exec(ctx, "INSERT INTO nonces_used (namespace, nonce, expires) VALUES ('gw', '\\x01', now() - interval '1 day')"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(t, s, "nonces_used") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("background cleanup did not delete an expired nonce")
		}
		time.Sleep(20 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the background cleanup")
	}
}
