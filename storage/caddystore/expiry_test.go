package caddystore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/caddystore"
)

// The expiry index is a hint: an entry whose record was never written is
// dropped, an authorization whose expiry moved later is kept and indexed
// under its new day, and a pass leaves no empty day behind.
func TestDeleteExpired_IndexIsAHint(t *testing.T) {
	dir := t.TempDir()
	s := caddystore.New(&certmagic.FileStorage{Path: dir}, "acme_gateway/test")
	ctx := t.Context()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	a := &storage.Authorization{ID: "authz1", AccountID: "acct1", Status: storage.StatusPending,
		Identifier: storage.Identifier{Type: "dns", Value: "a.example"}, Expires: now.Add(-time.Hour)}
	o := &storage.Order{ID: "order1", AccountID: "acct1", Status: storage.StatusPending, CreatedAt: now.Add(-2 * time.Hour),
		Expires: now.Add(-time.Hour), AuthzIDs: []string{a.ID}, Identifiers: []storage.Identifier{a.Identifier}}
	if err := s.CreateOrder(ctx, o, []*storage.Authorization{a}); err != nil {
		t.Fatal(err)
	}
	// The authorization turned valid and lives on; the order stays pending.
	a.Status, a.Expires = storage.StatusValid, now.Add(30*24*time.Hour)
	if err := s.UpdateAuthz(ctx, a); err != nil {
		t.Fatal(err)
	}
	// An entry whose record never came.
	ghost := filepath.Join(dir, "acme_gateway", "test", "expiry", now.Add(-48*time.Hour).Format(time.DateOnly), "o-ghost")
	if err := os.MkdirAll(filepath.Dir(ghost), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ghost, []byte("ghost"), 0o600); err != nil {
		t.Fatal(err)
	}

	if n, err := s.DeleteExpired(ctx, now, 100); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want the order alone", n, err)
	}
	if _, err := s.GetOrder(ctx, o.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired order: %v", err)
	}
	if _, err := s.GetAuthz(ctx, a.ID); err != nil {
		t.Fatalf("authorization that lives on: %v", err)
	}
	days, _ := os.ReadDir(filepath.Join(dir, "acme_gateway", "test", "expiry"))
	var names []string
	for _, d := range days {
		names = append(names, d.Name())
	}
	if len(names) != 1 || names[0] != a.Expires.Format(time.DateOnly) {
		t.Fatalf("expiry days left %v, want only the authorization's new day", names)
	}
	// Once that day has passed, the expired valid authorization stays and
	// its entry goes.
	if n, err := s.DeleteExpired(ctx, a.Expires.Add(time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("DeleteExpired later = %d, %v", n, err)
	}
	if _, err := s.GetAuthz(ctx, a.ID); err != nil {
		t.Fatalf("expired valid authorization: %v", err)
	}
}
