package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func testUpdateAuthzCAS(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	_, authzs := createOrder(t, s, acct.ID, "example.com")
	first, second := getAuthz(t, s, authzs[0].ID), getAuthz(t, s, authzs[0].ID)

	first.Status = storage.StatusValid
	first.Challenges[1].Status = storage.StatusValid
	first.Challenges[1].Validated = base.Add(time.Minute)
	if err := s.UpdateAuthz(t.Context(), first); err != nil {
		t.Fatalf("UpdateAuthz: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("Version after UpdateAuthz = %d, want 2", first.Version)
	}
	mustEqual(t, "GetAuthz after update", first, getAuthz(t, s, first.ID))

	second.Status = storage.StatusInvalid
	second.Challenges[0].Status = storage.StatusInvalid
	second.Challenges[0].Error = []byte(`{"type":"urn:ietf:params:acme:error:unauthorized"}`)
	if err := s.UpdateAuthz(t.Context(), second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateAuthz(stale Version) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetAuthz after lost swap", first, getAuthz(t, s, first.ID))
}

func testValidAuthz(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct, other := createAccount(t, s), createAccount(t, s)
	now := base.Add(time.Hour)

	// Authorizations born in a state, as a backend would see pre-authorized
	// or imported ones; testValidAuthzFollowsUpdates covers transitions.
	born := func(accountID, name, status string, expires time.Time) *storage.Authorization {
		o, authzs := newOrder(t, accountID, name)
		authzs[0].Status = status
		authzs[0].Expires = expires
		if err := s.CreateOrder(ctx, o, authzs); err != nil {
			t.Fatalf("CreateOrder: %v", err)
		}
		return authzs[0]
	}
	valid := born(acct.ID, "example.com", storage.StatusValid, now.Add(time.Hour))
	validWildcard := born(acct.ID, "*.example.com", storage.StatusValid, now.Add(time.Hour))
	born(acct.ID, "pending.example.com", storage.StatusPending, now.Add(time.Hour))
	born(acct.ID, "invalid.example.com", storage.StatusInvalid, now.Add(time.Hour))
	born(acct.ID, "deactivated.example.com", storage.StatusDeactivated, now.Add(time.Hour))
	born(acct.ID, "expired.example.com", storage.StatusValid, now.Add(-time.Second))
	born(acct.ID, "boundary.example.com", storage.StatusValid, now)
	born(other.ID, "other.example.com", storage.StatusValid, now.Add(time.Hour))

	dns := func(v string) storage.Identifier { return storage.Identifier{Type: "dns", Value: v} }
	tests := []struct {
		name      string
		accountID string
		ident     storage.Identifier
		wildcard  bool
		now       time.Time
		want      *storage.Authorization // nil for ErrNotFound
	}{
		{"Valid", acct.ID, dns("example.com"), false, now, valid},
		{"ValidWildcard", acct.ID, dns("example.com"), true, now, validWildcard},
		{"ValidUntilJustBeforeExpiry", acct.ID, dns("example.com"), false, valid.Expires.Add(-time.Microsecond), valid},
		{"ExpiredAtNow", acct.ID, dns("example.com"), false, valid.Expires, nil},
		{"ExpiredBeforeNow", acct.ID, dns("expired.example.com"), false, now, nil},
		{"ExpiresExactlyNow", acct.ID, dns("boundary.example.com"), false, now, nil},
		{"Pending", acct.ID, dns("pending.example.com"), false, now, nil},
		{"Invalid", acct.ID, dns("invalid.example.com"), false, now, nil},
		{"Deactivated", acct.ID, dns("deactivated.example.com"), false, now, nil},
		{"OtherAccount", other.ID, dns("example.com"), false, now, nil},
		{"OtherAccountsAuthz", acct.ID, dns("other.example.com"), false, now, nil},
		{"OtherName", acct.ID, dns("www.example.com"), false, now, nil},
		{"OtherType", acct.ID, storage.Identifier{Type: "ip", Value: "example.com"}, false, now, nil},
		{"UnknownAccount", newID(t), dns("example.com"), false, now, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ValidAuthz(ctx, tc.accountID, tc.ident, tc.wildcard, tc.now)
			if tc.want == nil {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("ValidAuthz = %+v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValidAuthz: %v", err)
			}
			mustEqual(t, "ValidAuthz", tc.want, got)
		})
	}
}

func testValidAuthzFollowsUpdates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct := createAccount(t, s)
	_, authzs := createOrder(t, s, acct.ID, "example.com")
	a := authzs[0]
	find := func() (*storage.Authorization, error) {
		return s.ValidAuthz(ctx, acct.ID, a.Identifier, false, base)
	}
	if got, err := find(); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ValidAuthz(pending) = %+v, %v; want ErrNotFound", got, err)
	}

	a.Status = storage.StatusValid
	if err := s.UpdateAuthz(ctx, a); err != nil {
		t.Fatalf("UpdateAuthz(valid): %v", err)
	}
	got, err := find()
	if err != nil {
		t.Fatalf("ValidAuthz after validation: %v", err)
	}
	mustEqual(t, "ValidAuthz after validation", a, got)

	// A copy of the result is not the stored record.
	got.Status = storage.StatusRevoked
	if got, err := find(); err != nil || got.Status != storage.StatusValid {
		t.Fatalf("ValidAuthz after changing a returned record = %+v, %v", got, err)
	}

	a.Status = storage.StatusDeactivated
	if err := s.UpdateAuthz(ctx, a); err != nil {
		t.Fatalf("UpdateAuthz(deactivated): %v", err)
	}
	if got, err := find(); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ValidAuthz(deactivated) = %+v, %v; want ErrNotFound", got, err)
	}
}
