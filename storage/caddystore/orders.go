package caddystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// CreateOrder implements storage.Orders. It takes no lock: the gateway's ids
// are random, so nobody else writes these keys. The order is written last,
// so a crash part-way leaves only authorizations and an index entry that no
// order refers to.
func (s *Store) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	if !safe(o.ID) {
		return unsafeName("order id", o.ID)
	}
	if !safe(o.AccountID) {
		return unsafeName("account id", o.AccountID)
	}
	var fresh []*storage.Authorization
	for _, a := range authzs {
		if a.Version != 0 {
			continue
		}
		if !safe(a.ID) {
			return unsafeName("authz id", a.ID)
		}
		if !safe(a.AccountID) {
			return unsafeName("account id", a.AccountID)
		}
		fresh = append(fresh, a)
	}
	// The expiry index first: it may name what is not written yet, never
	// miss what is.
	if err := s.indexExpiry(ctx, expiryOrder, o.ID, o.Expires); err != nil {
		return err
	}
	for _, a := range fresh {
		if err := s.indexExpiry(ctx, expiryAuthz, a.ID, a.Expires); err != nil {
			return err
		}
	}
	for _, a := range fresh {
		rec := *a
		rec.Version = 1
		if rec.Status == storage.StatusValid {
			if err := s.putString(ctx, s.validAuthzDir(a.AccountID, a.Identifier, a.Wildcard)+"/"+a.ID, a.ID); err != nil {
				return err
			}
		}
		if err := s.put(ctx, s.authzKey(a.ID), &rec); err != nil {
			return err
		}
	}
	if err := s.putString(ctx, s.accountOrders(o.AccountID)+"/"+listing.Key(o.CreatedAt, o.ID), o.ID); err != nil {
		return err
	}
	rec := *o
	rec.Version = 1
	if err := s.put(ctx, s.orderKey(o.ID), &rec); err != nil {
		return err
	}
	for _, a := range fresh {
		a.Version = 1
	}
	o.Version = 1
	return nil
}

// GetOrder implements storage.Orders.
func (s *Store) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	return getRecord(ctx, s, orders, id)
}

// UpdateOrder implements storage.Orders.
func (s *Store) UpdateOrder(ctx context.Context, o *storage.Order) error {
	return updateRecord(ctx, s, orders, o, nil)
}

// ListOrders implements storage.Orders. It lists the account's whole index
// for every page, which is fine for the few hundred orders an account has
// in view at once.
func (s *Store) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("caddystore: ListOrders limit %d is not positive", limit)
	}
	if !safe(accountID) {
		return nil, "", nil
	}
	keys, err := s.list(ctx, s.accountOrders(accountID))
	if err != nil {
		return nil, "", err
	}
	// Skip what is not an index entry, such as an editor's backup file.
	keys = slices.DeleteFunc(keys, func(k string) bool { _, ok := listing.ID(k); return !ok })
	slices.Sort(keys)
	page, next := listing.Page(keys, self, cursor, limit)
	ids := make([]string, len(page))
	for j, k := range page {
		ids[j], _ = listing.ID(k)
	}
	return ids, next, nil
}

// list returns the base names of the keys directly under dir; a missing
// directory is empty.
func (s *Store) list(ctx context.Context, dir string) ([]string, error) {
	keys, err := s.storage.List(ctx, dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, s.failed("list", dir, err)
	}
	for i, k := range keys {
		keys[i] = path.Base(k)
	}
	return keys, nil
}

// recordNames returns the sorted names, without ".json", of the records
// directly under dir whose names valid accepts.
func (s *Store) recordNames(ctx context.Context, dir string, valid func(name string) bool) ([]string, error) {
	keys, err := s.list(ctx, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range keys {
		if name, ok := strings.CutSuffix(k, ".json"); ok && valid(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
