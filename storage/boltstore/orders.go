package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// CreateOrder implements storage.Orders.
func (s *Store) CreateOrder(ctx context.Context, o *storage.Order, as []*storage.Authorization) error {
	var (
		fresh  []*storage.Authorization // copies with Version 1
		values [][]byte
	)
	for _, a := range as {
		if a.Version != 0 {
			continue // reused, left as it is
		}
		r := *a
		r.Version = 1
		v, err := authzs.encode(a.ID, &r)
		if err != nil {
			return err
		}
		fresh, values = append(fresh, &r), append(values, v)
	}
	err := createRecord(ctx, s, orders, o.ID, o, func(tx *bolt.Tx, rec *storage.Order, seq []byte) error {
		if err := put(tx.Bucket(accountOrders), accountOrderKey(rec), nil, "order"); err != nil {
			return err
		}
		if err := indexOrder(tx, nil, rec, seq); err != nil {
			return err
		}
		for i, a := range fresh {
			seq, err := authzs.insert(tx, a.ID, values[i])
			if err != nil {
				return err
			}
			if err := indexAuthz(tx, nil, a, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.Version == 0 {
			a.Version = 1
		}
	}
	return nil
}

// accountOrderKey is o's entry in the index of an account's orders, which
// lists them oldest first, ties by id.
func accountOrderKey(o *storage.Order) []byte {
	return append(timeKey(part(nil, o.AccountID), o.CreatedAt), o.ID...)
}

// GetOrder implements storage.Orders.
func (s *Store) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	return getRecord(ctx, s, orders, id)
}

// UpdateOrder implements storage.Orders. The index of the account's orders
// stays: AccountID and CreatedAt never change.
func (s *Store) UpdateOrder(ctx context.Context, o *storage.Order) error {
	return updateRecord(ctx, s, orders, o.ID, o, indexOrder)
}

// indexOrder keeps the expiry index as rec, at seq, replaces old (nil for
// a new order).
func indexOrder(tx *bolt.Tx, old, rec *storage.Order, seq []byte) error {
	var was []byte
	if old != nil {
		was = orderExpiryKey(old, seq)
	}
	return reindex(appending(tx.Bucket(orderExpiry)), was, orderExpiryKey(rec, seq), nil, "order expiry")
}

// ListOrders implements storage.Orders. Its cursor names the last order
// listed by its creation time and id.
func (s *Store) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	prefix := part(nil, accountID)
	return list(ctx, s, accountOrders, prefix, cursor, limit, func(_ *bolt.Tx, k, _ []byte) (string, bool, error) {
		return string(k[len(prefix)+timeKeyLen:]), true, nil
	})
}

// GetAuthz implements storage.Authorizations.
func (s *Store) GetAuthz(ctx context.Context, id string) (*storage.Authorization, error) {
	return getRecord(ctx, s, authzs, id)
}

// UpdateAuthz implements storage.Authorizations.
func (s *Store) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	return updateRecord(ctx, s, authzs, a.ID, a, indexAuthz)
}

// indexAuthz keeps the indexes as rec, at seq, replaces old (nil for a new
// authorization): an authorization is in the index of valid ones while its
// Status is valid, and in the expiry index while it is not.
func indexAuthz(tx *bolt.Tx, old, rec *storage.Authorization, seq []byte) error {
	var wasValid, wasExpiring []byte
	if old != nil {
		wasValid, wasExpiring = validKey(old), authzExpiryKey(old, seq)
	}
	if err := reindex(tx.Bucket(validAuthzs), wasValid, validKey(rec), seq, "valid authz"); err != nil {
		return err
	}
	return reindex(appending(tx.Bucket(authzExpiry)), wasExpiring, authzExpiryKey(rec, seq), nil, "authz expiry")
}

// validPrefix starts the keys of the valid authorizations of an account for
// one identifier. Its last byte is the wildcard flag, 0 or 1.
func validPrefix(accountID string, ident storage.Identifier, wildcard bool) []byte {
	k := part(part(part(nil, accountID), ident.Type), ident.Value)
	if wildcard {
		return append(k, 1)
	}
	return append(k, 0)
}

// validKey is a's key in the index of valid authorizations, nil when a is
// not valid. Entries of one identifier sort by expiry.
func validKey(a *storage.Authorization) []byte {
	if a.Status != storage.StatusValid {
		return nil
	}
	return append(timeKey(validPrefix(a.AccountID, a.Identifier, a.Wildcard), a.Expires), a.ID...)
}

// ValidAuthz implements storage.Authorizations. It looks at the one
// authorization that expires last: when that one has expired, all have.
func (s *Store) ValidAuthz(ctx context.Context, accountID string, ident storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	prefix := validPrefix(accountID, ident, wildcard)
	end := slices.Clone(prefix)
	end[len(end)-1]++ // the first key after every key with prefix
	var a *storage.Authorization
	err := s.read(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(validAuthzs).Cursor()
		var k, seq []byte
		if next, _ := c.Seek(end); next == nil {
			k, seq = c.Last()
		} else {
			k, seq = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		found, err := authzs.load(tx, seq)
		if err == nil && found.Expires.After(now) {
			a = found
		}
		return err
	})
	if err == nil && a == nil {
		err = fmt.Errorf("boltstore: valid authz: %w", storage.ErrNotFound)
	}
	return a, err
}
