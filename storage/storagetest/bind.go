package storagetest

import (
	"errors"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// mustNotExist fails t when any trace of the unstored account a is found.
func mustNotExist(t *testing.T, s storage.Store, what string, a *storage.Account) {
	t.Helper()
	if _, err := s.GetAccount(t.Context(), a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: GetAccount error = %v, want ErrNotFound", what, err)
	}
	if _, err := s.AccountByThumbprint(t.Context(), a.KeyThumbprint); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: AccountByThumbprint error = %v, want ErrNotFound", what, err)
	}
	if a.Version != 0 || a.RegistrationID != "" {
		t.Errorf("%s: argument changed to Version %d, RegistrationID %q", what, a.Version, a.RegistrationID)
	}
}

func testBindAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := createRegistration(t, s)
	a := newAccount(t)
	if err := s.BindAccount(ctx, a, r); err != nil {
		t.Fatalf("BindAccount: %v", err)
	}
	if a.Version != 1 || a.RegistrationID != r.KeyID {
		t.Errorf("account after BindAccount has Version %d, RegistrationID %q; want 1, %q", a.Version, a.RegistrationID, r.KeyID)
	}
	if r.Version != 2 || r.AccountID != a.ID {
		t.Errorf("registration after BindAccount has Version %d, AccountID %q; want 2, %q", r.Version, r.AccountID, a.ID)
	}
	mustEqual(t, "GetRegistration after BindAccount", r, getRegistration(t, s, r.KeyID))
	mustEqual(t, "GetAccount after BindAccount", a, getAccount(t, s, a.ID))
	byKey, err := s.AccountByThumbprint(ctx, a.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint: %v", err)
	}
	mustEqual(t, "AccountByThumbprint after BindAccount", a, byKey)
}

func testBindAccountStaleVersion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := createRegistration(t, s)
	first, second := getRegistration(t, s, r.KeyID), getRegistration(t, s, r.KeyID)
	a := newAccount(t)
	if err := s.BindAccount(ctx, a, first); err != nil {
		t.Fatalf("BindAccount: %v", err)
	}
	b := newAccount(t)
	if err := s.BindAccount(ctx, b, second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("BindAccount(stale Version) error = %v, want ErrConflict", err)
	}
	mustNotExist(t, s, "loser of BindAccount", b)
	if second.Version != 1 || second.AccountID != "" {
		t.Errorf("registration argument after lost BindAccount has Version %d, AccountID %q; want it as read", second.Version, second.AccountID)
	}
	mustEqual(t, "GetRegistration after lost BindAccount", first, getRegistration(t, s, r.KeyID))
}

func testBindAccountAlreadyBound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := createRegistration(t, s)
	a := newAccount(t)
	if err := s.BindAccount(ctx, a, r); err != nil {
		t.Fatalf("BindAccount: %v", err)
	}
	// A current Version is not enough: the registration is used up.
	bound := getRegistration(t, s, r.KeyID)
	b := newAccount(t)
	if err := s.BindAccount(ctx, b, bound); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("BindAccount(bound registration) error = %v, want ErrConflict", err)
	}
	mustNotExist(t, s, "BindAccount to a bound registration", b)
	mustEqual(t, "GetRegistration after refused BindAccount", r, getRegistration(t, s, r.KeyID))

	// An officer may release it; then it binds again.
	bound.AccountID = ""
	if err := s.UpdateRegistration(ctx, bound); err != nil {
		t.Fatalf("UpdateRegistration(unbind): %v", err)
	}
	if err := s.BindAccount(ctx, b, bound); err != nil {
		t.Fatalf("BindAccount after unbinding: %v", err)
	}
	mustEqual(t, "GetRegistration after rebinding", bound, getRegistration(t, s, r.KeyID))
	mustEqual(t, "first account after rebinding", a, getAccount(t, s, a.ID))
}

func testBindAccountDuplicateThumbprint(t *testing.T, s storage.Store) {
	ctx := t.Context()
	holder := createAccount(t, s)
	r := createRegistration(t, s)
	a := newAccount(t)
	a.KeyThumbprint = holder.KeyThumbprint
	if err := s.BindAccount(ctx, a, r); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("BindAccount(taken thumbprint) error = %v, want ErrConflict", err)
	}
	if _, err := s.GetAccount(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount(refused account) error = %v, want ErrNotFound", err)
	}
	if a.Version != 0 || a.RegistrationID != "" {
		t.Errorf("account argument changed to Version %d, RegistrationID %q", a.Version, a.RegistrationID)
	}
	if r.Version != 1 || r.AccountID != "" {
		t.Errorf("registration argument changed to Version %d, AccountID %q", r.Version, r.AccountID)
	}
	mustEqual(t, "GetRegistration after refused BindAccount", r, getRegistration(t, s, r.KeyID))
	got, err := s.AccountByThumbprint(ctx, holder.KeyThumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint: %v", err)
	}
	mustEqual(t, "holder of the thumbprint", holder, got)

	// The registration is still usable with a fresh key.
	if err := s.BindAccount(ctx, newAccount(t), r); err != nil {
		t.Fatalf("BindAccount(fresh key) after refusal: %v", err)
	}
}

func testBindAccountUnknownRegistration(t *testing.T, s storage.Store) {
	r := newRegistration(t)
	r.Version = 1
	a := newAccount(t)
	if err := s.BindAccount(t.Context(), a, r); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("BindAccount(unknown registration) error = %v, want ErrNotFound", err)
	}
	mustNotExist(t, s, "BindAccount to an unknown registration", a)
}

func testRaceBindAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	read := createRegistration(t, s)
	var (
		accts [racers]*storage.Account
		regs  [racers]*storage.Registration
	)
	for i := range racers {
		accts[i] = newAccount(t)
		r := *read
		regs[i] = &r
	}
	w := race(t, func(i int) error { return s.BindAccount(ctx, accts[i], regs[i]) })[0]
	mustEqual(t, "GetRegistration after race", regs[w], getRegistration(t, s, read.KeyID))
	for i, a := range accts {
		got, err := s.AccountByThumbprint(ctx, a.KeyThumbprint)
		switch {
		case i == w && err != nil:
			t.Errorf("AccountByThumbprint(winner): %v", err)
		case i == w:
			mustEqual(t, "winner's account", a, got)
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("AccountByThumbprint(loser %d) error = %v, want ErrNotFound", i, err)
		}
	}
	listed, _, err := s.ListAccounts(ctx, storage.AccountFilter{RegistrationID: read.KeyID}, "", 100)
	if err != nil || len(listed) != 1 || listed[0].ID != accts[w].ID {
		t.Errorf("ListAccounts(registration) after race = %d accounts, %v; want the winner's only", len(listed), err)
	}
}
