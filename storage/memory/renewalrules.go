package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalRules holds the renewal rules by scope. It has a lock of its
// own: rules touch no other record.
type renewalRules struct {
	mu      sync.RWMutex
	byScope map[storage.RenewalScope][]storage.RenewalRule
	ids     map[string]bool
}

// CreateRenewalRule implements storage.RenewalRules.
func (s *Store) CreateRenewalRule(_ context.Context, r *storage.RenewalRule) error {
	rs := &s.rules
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ids[r.ID] {
		return fmt.Errorf("memory: renewal rule %q: %w", r.ID, storage.ErrConflict)
	}
	rs.ids[r.ID] = true
	rs.byScope[r.RenewalScope] = append(rs.byScope[r.RenewalScope], *r)
	return nil
}

// RenewalRulesFor implements storage.RenewalRules.
func (s *Store) RenewalRulesFor(_ context.Context, scopes []storage.RenewalScope) ([]*storage.RenewalRule, error) {
	rs := &s.rules
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	out := []*storage.RenewalRule{}
	for _, sc := range storage.DistinctScopes(scopes) {
		for _, r := range rs.byScope[sc] {
			out = append(out, &r)
		}
	}
	return out, nil
}
