package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

var (
	orderExpiry = []byte("order_expiry")
	authzExpiry = []byte("authz_expiry")
)

// expiryKey is a record's entry in the index of what DeleteExpired deletes
// once it has expired: nil while the record is valid, which is kept.
// Entries sort by expiry, so DeleteExpired reads only what it deletes.
func expiryKey(status string, expires time.Time, seq []byte) []byte {
	if status == storage.StatusValid {
		return nil
	}
	return append(timeKey(nil, expires), seq...)
}

func orderExpiryKey(o *storage.Order, seq []byte) []byte { return expiryKey(o.Status, o.Expires, seq) }

func authzExpiryKey(a *storage.Authorization, seq []byte) []byte {
	return expiryKey(a.Status, a.Expires, seq)
}

// reindex replaces the entry was (nil: none) of the index b by is (nil:
// none), whose value is value.
func reindex(b *bolt.Bucket, was, is, value []byte, what string) error {
	if bytes.Equal(was, is) {
		return nil
	}
	if was != nil {
		if err := b.Delete(was); err != nil {
			return fmt.Errorf("boltstore: index %s: %w", what, err)
		}
	}
	if is == nil {
		return nil
	}
	return put(b, is, value, what)
}

// DeleteExpired implements storage.Expirer: one transaction, which reads
// the expiry indexes up to before and deletes at most limit records with
// their index entries. The freed pages are used again by later writes, so
// the file stops growing once as much expires as is created.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("boltstore: DeleteExpired limit %d is not positive", limit)
	}
	end := timeKey(nil, before)
	var n int
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0 // a batch may run this again
		orderKeys := expired(tx, orderExpiry, end, limit)
		for _, k := range orderKeys {
			if err := deleteOrder(tx, k); err != nil {
				return err
			}
		}
		authzKeys := expired(tx, authzExpiry, end, limit-len(orderKeys))
		for _, k := range authzKeys {
			if err := deleteAuthz(tx, k); err != nil {
				return err
			}
		}
		n = len(orderKeys) + len(authzKeys)
		return nil
	})
	return n, err
}

// expired returns up to limit keys of the expiry index in bucket that sort
// before end. Deleting while a bbolt cursor walks the bucket skips keys, so
// it collects them first.
func expired(tx *bolt.Tx, bucket, end []byte, limit int) [][]byte {
	var keys [][]byte
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit && bytes.Compare(k[:timeKeyLen], end) < 0; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

// deleteOrder deletes the order of the expiry index entry k, and its entry
// in its account's list.
func deleteOrder(tx *bolt.Tx, k []byte) error {
	seq := k[timeKeyLen:]
	o, err := orders.load(tx, seq)
	if err != nil {
		return err
	}
	if err := orders.remove(tx, o.ID, seq); err != nil {
		return err
	}
	return deleteKeys(tx, "order "+o.ID, entry{accountOrders, accountOrderKey(o)}, entry{orderExpiry, k})
}

// deleteAuthz deletes the authorization of the expiry index entry k. It is
// not valid, so not in the index of valid ones.
func deleteAuthz(tx *bolt.Tx, k []byte) error {
	seq := k[timeKeyLen:]
	a, err := authzs.load(tx, seq)
	if err != nil {
		return err
	}
	if err := authzs.remove(tx, a.ID, seq); err != nil {
		return err
	}
	return deleteKeys(tx, "authz "+a.ID, entry{authzExpiry, k})
}

// entry is a key in a bucket.
type entry struct{ bucket, key []byte }

// deleteKeys deletes entries of what.
func deleteKeys(tx *bolt.Tx, what string, entries ...entry) error {
	for _, e := range entries {
		if err := tx.Bucket(e.bucket).Delete(e.key); err != nil {
			return fmt.Errorf("boltstore: delete %s: %w", what, err)
		}
	}
	return nil
}

// indexExpiries fills the expiry indexes from the orders and authorizations
// stored, for a file written before they existed.
func indexExpiries(tx *bolt.Tx) error {
	for _, t := range []struct{ records, index []byte }{{orders.records, orderExpiry}, {authzs.records, authzExpiry}} {
		index := appending(tx.Bucket(t.index))
		err := tx.Bucket(t.records).ForEach(func(seq, v []byte) error {
			var rec struct {
				Status  string    `json:"status"`
				Expires time.Time `json:"expires"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("boltstore: record %x of %s: %w", seq, t.records, err)
			}
			return reindex(index, nil, expiryKey(rec.Status, rec.Expires, seq), nil, string(t.index))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard.
var _ storage.Expirer = (*Store)(nil)
