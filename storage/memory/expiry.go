package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// DeleteExpired implements storage.Expirer. It looks at every order and
// authorization, which is fine at the sizes a store in memory holds.
func (s *Store) DeleteExpired(_ context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("memory: DeleteExpired limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, o := range s.orders.records {
		if n == limit {
			return n, nil
		}
		if o.Status != storage.StatusValid && o.Expires.Before(before) {
			delete(s.orders.records, id)
			list := slices.DeleteFunc(s.accountOrders[o.AccountID], func(e listEntry) bool { return e.id == id })
			if len(list) == 0 {
				delete(s.accountOrders, o.AccountID)
			} else {
				s.accountOrders[o.AccountID] = list
			}
			n++
		}
	}
	// Only valid authorizations are in the index of valid ones.
	for id, a := range s.authzs.records {
		if n == limit {
			return n, nil
		}
		if a.Status != storage.StatusValid && a.Expires.Before(before) {
			delete(s.authzs.records, id)
			n++
		}
	}
	return n, nil
}

// Interface guard.
var _ storage.Expirer = (*Store)(nil)
