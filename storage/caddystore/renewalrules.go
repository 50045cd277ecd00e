package caddystore

import (
	"context"
	"encoding/hex"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalRuleDir is where the rules of one scope are kept, one file each.
// The scope is hashed: its value may be empty or hold unsafe characters.
func (s *Store) renewalRuleDir(sc storage.RenewalScope) string {
	d := sc.Digest()
	return s.prefix + "/renewal_rules/" + hex.EncodeToString(d[:])
}

func (s *Store) renewalRuleIDKey(id string) string { return s.prefix + "/renewal_rule_ids/" + id }

// CreateRenewalRule implements storage.RenewalRules (see claimID).
func (s *Store) CreateRenewalRule(ctx context.Context, r *storage.RenewalRule) error {
	dir := s.renewalRuleDir(r.RenewalScope)
	return s.claimID(ctx, "renewal rule", r.ID, s.renewalRuleIDKey(r.ID), dir, func() error {
		return s.put(ctx, dir+"/"+r.ID+".json", r)
	})
}

// RenewalRulesFor implements storage.RenewalRules: one listing per scope.
func (s *Store) RenewalRulesFor(ctx context.Context, scopes []storage.RenewalScope) ([]*storage.RenewalRule, error) {
	out := []*storage.RenewalRule{}
	for _, sc := range storage.DistinctScopes(scopes) {
		dir := s.renewalRuleDir(sc)
		names, err := s.recordNames(ctx, dir, safe)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			var r storage.RenewalRule
			if err := s.load(ctx, dir+"/"+name+".json", &r); err != nil {
				return nil, err
			}
			out = append(out, &r)
		}
	}
	return out, nil
}
