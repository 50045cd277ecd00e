package caddystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// The expiry index lists every order and authorization under the day it
// expires: <prefix>/expiry/<YYYY-MM-DD>/o-<id> or a-<id>. A pass of
// DeleteExpired lists only the days that have passed, a day at a time,
// and checks each record it names against the record itself: the index is
// a hint, written before the record, so that it never misses one.

const (
	expiryOrder = "o-"
	expiryAuthz = "a-"
)

func (s *Store) expiryDir() string { return s.prefix + "/expiry" }

func expiryDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// indexExpiry writes the index entry of a record of kind that expires at
// expires.
func (s *Store) indexExpiry(ctx context.Context, kind, id string, expires time.Time) error {
	return s.putString(ctx, s.expiryDir()+"/"+expiryDay(expires)+"/"+kind+id, id)
}

// DeleteExpired implements storage.Expirer.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("caddystore: DeleteExpired limit %d is not positive", limit)
	}
	days, err := s.list(ctx, s.expiryDir())
	if err != nil {
		return 0, err
	}
	slices.Sort(days)
	last := expiryDay(before)
	n := 0
	for _, day := range days {
		if day > last || n == limit {
			break
		}
		dir := s.expiryDir() + "/" + day
		entries, err := s.list(ctx, dir)
		if err != nil {
			return n, err
		}
		for _, e := range entries {
			if n == limit {
				return n, nil
			}
			deleted, err := s.expireEntry(ctx, dir+"/"+e, e, before)
			if err != nil {
				return n, err
			}
			if deleted {
				n++
			}
		}
		if remaining, err := s.list(ctx, dir); err == nil && len(remaining) == 0 {
			_ = s.storage.Delete(ctx, dir)
		}
	}
	return n, nil
}

// expireEntry acts on one index entry: it deletes the record it names when
// that expired before before unfinished, and drops the entry once the
// record is gone or will stay (valid and expired); a record whose expiry
// moved later is indexed again under its day.
func (s *Store) expireEntry(ctx context.Context, key, name string, before time.Time) (deleted bool, err error) {
	kind, id := name[:len(expiryOrder)], name[len(expiryOrder):]
	var expires time.Time
	var status string
	var drop func() error
	switch kind {
	case expiryOrder:
		o, err := s.GetOrder(ctx, id)
		if err != nil {
			return false, s.dropMissing(ctx, key, err)
		}
		expires, status = o.Expires, o.Status
		drop = func() error { return s.deleteOrder(ctx, o) }
	case expiryAuthz:
		a, err := s.GetAuthz(ctx, id)
		if err != nil {
			return false, s.dropMissing(ctx, key, err)
		}
		expires, status = a.Expires, a.Status
		drop = func() error { return s.storage.Delete(ctx, s.authzKey(id)) }
	default:
		return false, nil // not an entry of ours
	}
	switch {
	case !expires.Before(before):
		if day := expiryDay(expires); !strings.Contains(key, "/"+day+"/") {
			if err := s.indexExpiry(ctx, kind, id, expires); err != nil {
				return false, err
			}
			_ = s.storage.Delete(ctx, key)
		}
		return false, nil
	case status == storage.StatusValid:
		// Expired and valid: it stays, and nothing changes it any more.
		_ = s.storage.Delete(ctx, key)
		return false, nil
	}
	if err := drop(); err != nil && !errors.Is(s.failed("delete", key, err), storage.ErrNotFound) {
		return false, s.failed("delete", key, err)
	}
	_ = s.storage.Delete(ctx, key)
	return true, nil
}

// dropMissing deletes the entry of a record that does not exist (its
// writer stopped between the entry and the record, or it was deleted).
func (s *Store) dropMissing(ctx context.Context, key string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		_ = s.storage.Delete(ctx, key)
		return nil
	}
	return err
}

// deleteOrder deletes an order and its entry in its account's list, the
// entry first so that the list never names a missing order for long.
func (s *Store) deleteOrder(ctx context.Context, o *storage.Order) error {
	_ = s.storage.Delete(ctx, s.accountOrders(o.AccountID)+"/"+listing.Key(o.CreatedAt, o.ID))
	return s.storage.Delete(ctx, s.orderKey(o.ID))
}

// Interface guard.
var _ storage.Expirer = (*Store)(nil)
