package boltstore

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Renewal rules have no Version: they are never updated. renewalRuleScopes
// indexes them by scopeKey and id.
var renewalRules = table[storage.RenewalRule]{kind: "renewal rule", records: []byte("renewal_rules"), keys: []byte("renewal_rule_ids"),
	version: func(*storage.RenewalRule) *int64 { return new(int64) }}

// scopeKey is the fixed-length prefix of a scope's rules in renewalRuleScopes.
func scopeKey(sc storage.RenewalScope) []byte {
	d := sc.Digest()
	return d[:]
}

// CreateRenewalRule implements storage.RenewalRules.
func (s *Store) CreateRenewalRule(ctx context.Context, r *storage.RenewalRule) error {
	return createRecord(ctx, s, renewalRules, r.ID, r, func(tx *bolt.Tx, rec *storage.RenewalRule, seq []byte) error {
		return put(tx.Bucket(renewalRuleScopes), append(scopeKey(rec.RenewalScope), rec.ID...), seq, "renewal rule")
	})
}

// RenewalRulesFor implements storage.RenewalRules.
func (s *Store) RenewalRulesFor(ctx context.Context, scopes []storage.RenewalScope) ([]*storage.RenewalRule, error) {
	out := []*storage.RenewalRule{}
	err := s.read(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(renewalRuleScopes).Cursor()
		for _, sc := range storage.DistinctScopes(scopes) {
			prefix := scopeKey(sc)
			for k, seq := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, seq = c.Next() {
				r, err := renewalRules.load(tx, seq)
				if err != nil {
					return err
				}
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
