package storagetest

import (
	"errors"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func getAccount(t *testing.T, s storage.Store, id string) *storage.Account {
	t.Helper()
	a, err := s.GetAccount(t.Context(), id)
	if err != nil {
		t.Fatalf("GetAccount(%q): %v", id, err)
	}
	return a
}

func testCreateAccount(t *testing.T, s storage.Store) {
	a := createAccount(t, s)
	if a.Version != 1 {
		t.Fatalf("Version after CreateAccount = %d, want 1", a.Version)
	}
	mustEqual(t, "GetAccount", a, getAccount(t, s, a.ID))
	got, err := s.AccountByThumbprint(t.Context(), a.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint: %v", err)
	}
	mustEqual(t, "AccountByThumbprint", a, got)
}

func testAccountNotFound(t *testing.T, s storage.Store) {
	createAccount(t, s) // a store that is not empty
	if _, err := s.GetAccount(t.Context(), newID(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.AccountByThumbprint(t.Context(), newThumbprint(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AccountByThumbprint(unknown) error = %v, want ErrNotFound", err)
	}
}

func testDuplicateThumbprint(t *testing.T, s storage.Store) {
	a := createAccount(t, s)
	b := newAccount(t)
	b.KeyThumbprint = a.KeyThumbprint
	if err := s.CreateAccount(t.Context(), b); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateAccount(same thumbprint) error = %v, want ErrConflict", err)
	}
	if _, err := s.GetAccount(t.Context(), b.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount(rejected account) error = %v, want ErrNotFound", err)
	}
	got, err := s.AccountByThumbprint(t.Context(), a.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint: %v", err)
	}
	mustEqual(t, "AccountByThumbprint", a, got)
}

func testUpdateAccountCAS(t *testing.T, s storage.Store) {
	a := createAccount(t, s)
	first, second := getAccount(t, s, a.ID), getAccount(t, s, a.ID)

	first.Contact = []string{"mailto:new@example.com"}
	first.Status = storage.StatusDeactivated
	if err := s.UpdateAccount(t.Context(), first); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("Version after UpdateAccount = %d, want 2", first.Version)
	}
	mustEqual(t, "GetAccount after update", first, getAccount(t, s, a.ID))

	second.Contact = nil
	if err := s.UpdateAccount(t.Context(), second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateAccount(stale Version) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetAccount after lost swap", first, getAccount(t, s, a.ID))
}

func testKeyRollover(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := createAccount(t, s)
	oldThumbprint := a.KeyThumbprint
	a.KeyThumbprint = newThumbprint(t)
	a.KeyJWK = []byte(`{"kty":"OKP","crv":"Ed25519","x":"` + newID(t) + `"}`)
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatalf("UpdateAccount(rollover): %v", err)
	}
	if _, err := s.AccountByThumbprint(ctx, oldThumbprint); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AccountByThumbprint(old key) error = %v, want ErrNotFound", err)
	}
	got, err := s.AccountByThumbprint(ctx, a.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint(new key): %v", err)
	}
	mustEqual(t, "AccountByThumbprint(new key)", a, got)

	// The old key is free again.
	c := newAccount(t)
	c.KeyThumbprint = oldThumbprint
	if err := s.CreateAccount(ctx, c); err != nil {
		t.Fatalf("CreateAccount(released thumbprint): %v", err)
	}

	// Rolling over to a key another account holds conflicts and changes nothing.
	b := createAccount(t, s)
	stale := getAccount(t, s, a.ID)
	stale.KeyThumbprint = b.KeyThumbprint
	if err := s.UpdateAccount(ctx, stale); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateAccount(thumbprint taken) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetAccount after conflicting rollover", a, getAccount(t, s, a.ID))
	got, err = s.AccountByThumbprint(ctx, b.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint(taken key): %v", err)
	}
	mustEqual(t, "AccountByThumbprint(taken key)", b, got)
}

func testAccountCopies(t *testing.T, s storage.Store) {
	a := createAccount(t, s)
	want := getAccount(t, s, a.ID)

	// Changing what was passed in does not reach the store...
	a.Contact[0] = "mailto:mallory@example.com"
	a.KeyJWK[0] = '['
	mustEqual(t, "GetAccount after changing the created record", want, getAccount(t, s, a.ID))

	// ...nor does changing what came out.
	got := getAccount(t, s, a.ID)
	got.Contact[0] = "mailto:mallory@example.com"
	got.KeyJWK[0] = '['
	got.Status = storage.StatusRevoked
	mustEqual(t, "GetAccount after changing a returned record", want, getAccount(t, s, a.ID))
	byKey, err := s.AccountByThumbprint(t.Context(), a.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint: %v", err)
	}
	byKey.Contact[1] = "mailto:mallory@example.com"
	mustEqual(t, "GetAccount after changing a record found by key", want, getAccount(t, s, a.ID))

	// An update copies too.
	if err := s.UpdateAccount(t.Context(), want); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	want.Contact[0] = "mailto:mallory@example.com"
	if got := getAccount(t, s, a.ID); got.Contact[0] == want.Contact[0] {
		t.Fatal("changing an updated record changed the stored one")
	}
}
