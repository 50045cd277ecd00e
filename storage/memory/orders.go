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
	if _, ok := s.orders[o.ID]; ok {
		return fmt.Errorf("memory: order %q: %w", o.ID, storage.ErrConflict)
	}
	for _, a := range authzs {
		if _, ok := s.authzs[a.ID]; ok && a.Version == 0 {
			return fmt.Errorf("memory: authz %q: %w", a.ID, storage.ErrConflict)
		}
	}
	for _, a := range authzs {
		if a.Version != 0 {
			continue
		}
		a.Version = 1
		s.authzs[a.ID] = copyAuthz(a)
		if a.Status == storage.StatusValid {
			k := keyOf(a)
			s.valid[k] = append(s.valid[k], a.ID)
		}
	}
	o.Version = 1
	s.orders[o.ID] = copyOrder(o)
	e := listEntry{listing.Key(o.CreatedAt, o.ID), o.ID}
	s.accountOrders[o.AccountID] = insertEntry(s.accountOrders[o.AccountID], e, listEntry.sortKey)
	return nil
}

// GetOrder implements storage.Orders.
func (s *Store) GetOrder(_ context.Context, id string) (*storage.Order, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.orders[id]
	if !ok {
		return nil, notFound("order", id)
	}
	return copyOrder(o), nil
}

// UpdateOrder implements storage.Orders.
func (s *Store) UpdateOrder(_ context.Context, o *storage.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.orders[o.ID]
	if !ok {
		return notFound("order", o.ID)
	}
	if old.Version != o.Version {
		return conflict("order", o.ID, old.Version, o.Version)
	}
	o.Version++
	s.orders[o.ID] = copyOrder(o)
	return nil
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.authzs[id]
	if !ok {
		return nil, notFound("authz", id)
	}
	return copyAuthz(a), nil
}

// UpdateAuthz implements storage.Authorizations.
func (s *Store) UpdateAuthz(_ context.Context, a *storage.Authorization) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.authzs[a.ID]
	if !ok {
		return notFound("authz", a.ID)
	}
	if old.Version != a.Version {
		return conflict("authz", a.ID, old.Version, a.Version)
	}
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
	a.Version++
	s.authzs[a.ID] = copyAuthz(a)
	return nil
}

// ValidAuthz implements storage.Authorizations. It prefers the newest
// authorization, which is the likeliest to be unexpired.
func (s *Store) ValidAuthz(_ context.Context, accountID string, ident storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.valid[authzKey{accountID, ident.Type, ident.Value, wildcard}]
	for i := len(ids) - 1; i >= 0; i-- {
		if a := s.authzs[ids[i]]; a.Expires.After(now) {
			return copyAuthz(a), nil
		}
	}
	return nil, fmt.Errorf("memory: valid authz: %w", storage.ErrNotFound)
}
