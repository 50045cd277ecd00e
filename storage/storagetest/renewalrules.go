package storagetest

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func newRenewalRule(t *testing.T, sc storage.RenewalScope, at time.Time) *storage.RenewalRule {
	return &storage.RenewalRule{
		ID:             newID(t),
		RenewalScope:   sc,
		WindowStart:    at.Add(-2 * time.Hour),
		WindowEnd:      at.Add(-time.Hour),
		ExplanationURL: "https://example.com/incident/" + newID(t),
		CreatedAt:      at,
		CreatedBy:      "officer",
	}
}

func testRenewalRules(t *testing.T, s storage.Store) {
	ctx := t.Context()
	serial, account, kid := newID(t), newID(t), newID(t)
	certScope := storage.RenewalScope{Kind: storage.RenewalScopeCertificate, Value: serial}
	acctScope := storage.RenewalScope{Kind: storage.RenewalScopeAccount, Value: account}
	regScope := storage.RenewalScope{Kind: storage.RenewalScopeRegistration, Value: kid}
	// Another account's rule, and a certificate scope with the account's
	// id as its value: neither is one of the scopes looked up below.
	others := []storage.RenewalScope{
		{Kind: storage.RenewalScopeAccount, Value: newID(t)},
		{Kind: storage.RenewalScopeCertificate, Value: account},
	}
	var mine []*storage.RenewalRule
	for i, sc := range []storage.RenewalScope{certScope, acctScope, acctScope, regScope} {
		r := newRenewalRule(t, sc, base.Add(time.Duration(i)*time.Minute))
		if err := s.CreateRenewalRule(ctx, r); err != nil {
			t.Fatalf("CreateRenewalRule(%v): %v", sc, err)
		}
		mine = append(mine, r)
	}
	for _, sc := range others {
		if err := s.CreateRenewalRule(ctx, newRenewalRule(t, sc, base)); err != nil {
			t.Fatalf("CreateRenewalRule(%v): %v", sc, err)
		}
	}

	byID := func(a, b *storage.RenewalRule) int { return cmp.Compare(a.ID, b.ID) }
	check := func(scopes []storage.RenewalScope, want []*storage.RenewalRule) {
		t.Helper()
		got, err := s.RenewalRulesFor(ctx, scopes)
		if err != nil {
			t.Fatalf("RenewalRulesFor(%v): %v", scopes, err)
		}
		if got == nil {
			t.Fatalf("RenewalRulesFor(%v) = nil, want an empty list", scopes)
		}
		want = slices.Clone(want)
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		mustEqual(t, "RenewalRulesFor", want, got)
	}
	check([]storage.RenewalScope{certScope, acctScope, regScope}, mine)
	check([]storage.RenewalScope{acctScope}, mine[1:3])
	check([]storage.RenewalScope{acctScope, acctScope}, mine[1:3]) // a scope given twice lists its rules once
	check([]storage.RenewalScope{{Kind: storage.RenewalScopeRegistration, Value: newID(t)}}, nil)
	check(nil, nil)

	// The issuer scope has no value.
	issuer := newRenewalRule(t, storage.RenewalScope{Kind: storage.RenewalScopeIssuer}, base)
	if err := s.CreateRenewalRule(ctx, issuer); err != nil {
		t.Fatalf("CreateRenewalRule(issuer): %v", err)
	}
	got, err := s.RenewalRulesFor(ctx, []storage.RenewalScope{{Kind: storage.RenewalScopeIssuer}})
	if err != nil || !slices.ContainsFunc(got, func(r *storage.RenewalRule) bool { return r.ID == issuer.ID }) {
		t.Fatalf("RenewalRulesFor(issuer) = %v, %v; want it to hold %s", got, err, issuer.ID)
	}

	dup := newRenewalRule(t, regScope, base.Add(time.Hour))
	dup.ID = mine[0].ID
	if err := s.CreateRenewalRule(ctx, dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateRenewalRule(same ID) error = %v, want ErrConflict", err)
	}
	check([]storage.RenewalScope{regScope}, mine[3:])

	// Returned rules are copies.
	got, _ = s.RenewalRulesFor(ctx, []storage.RenewalScope{certScope})
	got[0].WindowEnd = base.Add(time.Hour)
	got[0].ExplanationURL = "changed"
	check([]storage.RenewalScope{certScope}, mine[:1])
}
