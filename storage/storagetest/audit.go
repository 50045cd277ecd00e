package storagetest

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func newAuditEntry(t *testing.T, at time.Time) *storage.AuditEntry {
	return &storage.AuditEntry{
		ID:     newID(t),
		Time:   at,
		Actor:  "officer",
		Action: "registration.create",
		Target: newID(t),
		Detail: []byte(`{"allowed_domains":["example.com"]}`),
	}
}

func testAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	// Appended out of time order, two of them tied.
	offsets := []time.Duration{3, 1, 4, 1, 5, 2}
	var all []*storage.AuditEntry
	for _, off := range offsets {
		e := newAuditEntry(t, base.Add(off*time.Second))
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *storage.AuditEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	want := ids(all, auditID)
	for _, limit := range []int{1, 4, 100} {
		got := collect(t, "ListAudit", limit, func(cursor string, limit int) ([]*storage.AuditEntry, string, error) {
			return s.ListAudit(ctx, cursor, limit)
		})
		if g := ours(ids(got, auditID), want); !slices.Equal(g, want) {
			t.Fatalf("ListAudit(limit %d) = %v, want %v (oldest first)", limit, g, want)
		}
		for _, e := range got {
			if i := slices.Index(want, e.ID); i >= 0 {
				mustEqual(t, "ListAudit entry", all[i], e)
			}
		}
	}

	dup := newAuditEntry(t, base.Add(time.Hour))
	dup.ID = all[0].ID
	if err := s.AppendAudit(ctx, dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("AppendAudit(same ID) error = %v, want ErrConflict", err)
	}

	// Listed entries are copies.
	got := collect(t, "ListAudit", 100, func(cursor string, limit int) ([]*storage.AuditEntry, string, error) {
		return s.ListAudit(ctx, cursor, limit)
	})
	for _, e := range got {
		e.Detail[0] = '['
		e.Actor = "mallory"
	}
	got = collect(t, "ListAudit", 100, func(cursor string, limit int) ([]*storage.AuditEntry, string, error) {
		return s.ListAudit(ctx, cursor, limit)
	})
	if g := ours(ids(got, auditID), want); !slices.Equal(g, want) {
		t.Fatalf("ListAudit after a refused duplicate = %v, want %v", g, want)
	}
	for _, e := range got {
		if i := slices.Index(want, e.ID); i >= 0 {
			mustEqual(t, "ListAudit entry after changing a listed one", all[i], e)
		}
	}
}
