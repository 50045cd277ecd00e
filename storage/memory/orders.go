package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// CreateOrder implements storage.Orders.
func (s *Store) CreateOrder(_ context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.orders.free(o.ID); err != nil {
		return err
	}
	for _, a := range authzs {
		if a.Version != 0 {
			continue
		}
		if err := s.authzs.free(a.ID); err != nil {
			return err
		}
	}
	for _, a := range authzs {
		if a.Version != 0 {
			continue
		}
		s.authzs.insert(a)
		if a.Status == storage.StatusValid {
			k := keyOf(a)
			s.valid[k] = append(s.valid[k], a.ID)
		}
	}
	s.orders.insert(o)
	e := listEntry{listing.Key(o.CreatedAt, o.ID), o.ID}
	s.accountOrders[o.AccountID] = insertEntry(s.accountOrders[o.AccountID], e, listEntry.sortKey)
	return nil
}

// GetOrder implements storage.Orders.
func (s *Store) GetOrder(_ context.Context, id string) (*storage.Order, error) {
	return getRecord(s, s.orders, id)
}

// UpdateOrder implements storage.Orders.
func (s *Store) UpdateOrder(_ context.Context, o *storage.Order) error {
	return updateRecord(s, s.orders, o, nil)
}

// ListOrders implements storage.Orders. Its cursor is the sort key of the
// last order returned.
func (s *Store) ListOrders(_ context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListOrders limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := listing.Page(s.accountOrders[accountID], listEntry.sortKey, cursor, limit)
	ids := make([]string, len(page))
	for j, e := range page {
		ids[j] = e.id
	}
	return ids, next, nil
}

// GetAuthz implements storage.Authorizations.
func (s *Store) GetAuthz(_ context.Context, id string) (*storage.Authorization, error) {
	return getRecord(s, s.authzs, id)
}

// UpdateAuthz implements storage.Authorizations.
func (s *Store) UpdateAuthz(_ context.Context, a *storage.Authorization) error {
	return updateRecord(s, s.authzs, a, (*Store).reindexAuthz)
}

// reindexAuthz keeps the index of valid authorizations as a replaces old.
// The caller holds s.mu.
func (s *Store) reindexAuthz(old, a *storage.Authorization) error {
	wasValid, isValid := old.Status == storage.StatusValid, a.Status == storage.StatusValid
	if wasValid && (!isValid || keyOf(old) != keyOf(a)) {
		k := keyOf(old)
		s.valid[k] = slices.DeleteFunc(s.valid[k], func(id string) bool { return id == a.ID })
		if len(s.valid[k]) == 0 {
			delete(s.valid, k)
		}
	}
	if isValid && (!wasValid || keyOf(old) != keyOf(a)) {
		k := keyOf(a)
		s.valid[k] = append(s.valid[k], a.ID)
	}
	return nil
}

// ValidAuthz implements storage.Authorizations. It prefers the newest
// authorization, which is the likeliest to be unexpired.
func (s *Store) ValidAuthz(_ context.Context, accountID string, ident storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.valid[authzKey{accountID, ident.Type, ident.Value, wildcard}]
	for i := len(ids) - 1; i >= 0; i-- {
		if a := s.authzs.records[ids[i]]; a.Expires.After(now) {
			return copyAuthz(a), nil
		}
	}
	return nil, fmt.Errorf("memory: valid authz: %w", storage.ErrNotFound)
}
