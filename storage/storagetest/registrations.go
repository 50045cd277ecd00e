package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func newRegistration(t *testing.T) *storage.Registration {
	return &storage.Registration{
		KeyID:          newID(t),
		HMACKey:        randomBytes(t, 32),
		Description:    "build farm",
		AllowedDomains: []string{"example.com", "example.org"},
		Emails:         []string{"ops@example.com", "pki@example.org"},
		Profiles:       []string{"short", "server"},
		Status:         storage.RegistrationActive,
		CreatedAt:      base,
		CreatedBy:      "officer",
		UpdatedAt:      base,
		UpdatedBy:      "officer",
	}
}

func createRegistration(t *testing.T, s storage.Store) *storage.Registration {
	t.Helper()
	r := newRegistration(t)
	if err := s.CreateRegistration(t.Context(), r); err != nil {
		t.Fatalf("CreateRegistration: %v", err)
	}
	return r
}

func getRegistration(t *testing.T, s storage.Store, keyID string) *storage.Registration {
	t.Helper()
	r, err := s.GetRegistration(t.Context(), keyID)
	if err != nil {
		t.Fatalf("GetRegistration(%q): %v", keyID, err)
	}
	return r
}

func testCreateRegistration(t *testing.T, s storage.Store) {
	r := createRegistration(t, s)
	if r.Version != 1 {
		t.Fatalf("Version after CreateRegistration = %d, want 1", r.Version)
	}
	mustEqual(t, "GetRegistration", r, getRegistration(t, s, r.KeyID))

	dup := newRegistration(t)
	dup.KeyID = r.KeyID
	if err := s.CreateRegistration(t.Context(), dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateRegistration(same KeyID) error = %v, want ErrConflict", err)
	}
	if dup.Version != 0 {
		t.Errorf("Version after failed CreateRegistration = %d, want 0", dup.Version)
	}
	mustEqual(t, "GetRegistration after duplicate", r, getRegistration(t, s, r.KeyID))
}

func testRegistrationKeyIDs(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createRegistration(t, s) // a store that is not empty
	unknown := newID(t)
	if _, err := s.GetRegistration(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRegistration(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteRegistration(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteRegistration(unknown) error = %v, want ErrNotFound", err)
	}
	r := newRegistration(t)
	r.Version = 1
	if err := s.UpdateRegistration(ctx, r); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateRegistration(unknown) error = %v, want ErrNotFound", err)
	}

	for _, id := range []string{"", "../escape", "a/b", "a.b", "a b", "ключ", strings.Repeat("k", 65)} {
		r := newRegistration(t)
		r.KeyID = id
		err := s.CreateRegistration(ctx, r)
		if err == nil || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CreateRegistration(KeyID %q) error = %v, want a plain refusal", id, err)
		}
		if _, err := s.GetRegistration(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRegistration(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	longest := newRegistration(t)
	longest.KeyID = strings.Repeat("K", 63) + "_"
	if err := s.CreateRegistration(ctx, longest); err != nil {
		t.Fatalf("CreateRegistration(64-character KeyID): %v", err)
	}
	mustEqual(t, "GetRegistration(64-character KeyID)", longest, getRegistration(t, s, longest.KeyID))
}

func testUpdateRegistrationCAS(t *testing.T, s storage.Store) {
	r := createRegistration(t, s)
	first, second := getRegistration(t, s, r.KeyID), getRegistration(t, s, r.KeyID)

	first.Status = storage.RegistrationDisabled
	first.AllowedDomains = []string{"example.net"}
	first.Emails = []string{"new@example.net"}
	first.Profiles = []string{"long"}
	first.UpdatedBy = "auditor"
	if err := s.UpdateRegistration(t.Context(), first); err != nil {
		t.Fatalf("UpdateRegistration: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("Version after UpdateRegistration = %d, want 2", first.Version)
	}
	mustEqual(t, "GetRegistration after update", first, getRegistration(t, s, r.KeyID))

	second.Description = "stale"
	if err := s.UpdateRegistration(t.Context(), second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateRegistration(stale Version) error = %v, want ErrConflict", err)
	}
	if second.Version != 1 {
		t.Errorf("Version after lost swap = %d, want 1 as read", second.Version)
	}
	mustEqual(t, "GetRegistration after lost swap", first, getRegistration(t, s, r.KeyID))
}

func testDeleteRegistration(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := createRegistration(t, s)
	a := newAccount(t)
	if err := s.BindAccount(ctx, a, r); err != nil {
		t.Fatalf("BindAccount: %v", err)
	}
	if err := s.DeleteRegistration(ctx, r.KeyID); err != nil {
		t.Fatalf("DeleteRegistration: %v", err)
	}
	if _, err := s.GetRegistration(ctx, r.KeyID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRegistration(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteRegistration(ctx, r.KeyID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteRegistration(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.UpdateRegistration(ctx, r); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateRegistration(deleted) error = %v, want ErrNotFound", err)
	}
	mustEqual(t, "GetAccount of a deleted registration", a, getAccount(t, s, a.ID))

	// The key id is free again.
	again := newRegistration(t)
	again.KeyID = r.KeyID
	if err := s.CreateRegistration(ctx, again); err != nil {
		t.Fatalf("CreateRegistration(deleted KeyID): %v", err)
	}
	mustEqual(t, "GetRegistration(recreated)", again, getRegistration(t, s, r.KeyID))
}

func testListRegistrations(t *testing.T, s storage.Store) {
	want := make(map[string]*storage.Registration)
	var ids []string
	for range 5 {
		r := createRegistration(t, s)
		want[r.KeyID] = r
		ids = append(ids, r.KeyID)
	}
	slices.Sort(ids)
	gone := ids[2]
	if err := s.DeleteRegistration(t.Context(), gone); err != nil {
		t.Fatalf("DeleteRegistration: %v", err)
	}
	ids = slices.Delete(ids, 2, 3)

	got := collect(t, "ListRegistrations", 2, func(cursor string, limit int) ([]*storage.Registration, string, error) {
		return s.ListRegistrations(t.Context(), cursor, limit)
	})
	got = slices.DeleteFunc(got, func(r *storage.Registration) bool { return want[r.KeyID] == nil })
	if len(got) != len(ids) {
		t.Fatalf("ListRegistrations listed %d of ours, want %d (%v)", len(got), len(ids), ids)
	}
	for i, r := range got {
		if r.KeyID != ids[i] {
			t.Fatalf("ListRegistrations[%d] = %q, want %q (ordered by KeyID)", i, r.KeyID, ids[i])
		}
		mustEqual(t, "ListRegistrations["+r.KeyID+"]", want[r.KeyID], r)
	}
}

// cloneRegistration is a deep copy, so that a snapshot shares nothing with
// a store that failed to copy.
func cloneRegistration(r *storage.Registration) *storage.Registration {
	c := *r
	c.HMACKey = slices.Clone(r.HMACKey)
	c.AllowedDomains = slices.Clone(r.AllowedDomains)
	c.Emails = slices.Clone(r.Emails)
	c.Profiles = slices.Clone(r.Profiles)
	return &c
}

func testRegistrationCopies(t *testing.T, s storage.Store) {
	r := createRegistration(t, s)
	want := cloneRegistration(r)

	r.HMACKey[0] ^= 0xff
	r.AllowedDomains[0] = "evil.example"
	r.Emails[0] = "evil@example.net"
	mustEqual(t, "GetRegistration after changing the created record", want, getRegistration(t, s, r.KeyID))

	got := getRegistration(t, s, r.KeyID)
	got.HMACKey[0] ^= 0xff
	got.AllowedDomains[0] = "evil.example"
	got.Emails[0] = "evil@example.net"
	mustEqual(t, "GetRegistration after changing a returned record", want, getRegistration(t, s, r.KeyID))

	listed, _, err := s.ListRegistrations(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("ListRegistrations: %v", err)
	}
	for _, l := range listed {
		l.HMACKey[0] ^= 0xff
		l.AllowedDomains = append(l.AllowedDomains[:0], "evil.example")
		l.Emails = append(l.Emails[:0], "evil@example.net")
	}
	mustEqual(t, "GetRegistration after changing listed records", want, getRegistration(t, s, r.KeyID))

	update := cloneRegistration(want)
	if err := s.UpdateRegistration(t.Context(), update); err != nil {
		t.Fatalf("UpdateRegistration: %v", err)
	}
	want = cloneRegistration(update)
	update.HMACKey[0] ^= 0xff
	update.AllowedDomains[1] = "evil.example"
	update.Emails[1] = "evil@example.net"
	mustEqual(t, "GetRegistration after changing an updated record", want, getRegistration(t, s, r.KeyID))
}
