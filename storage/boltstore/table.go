package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// table is one kind of record: records keyed by sequence, and the index of
// their natural keys.
type table[T any] struct {
	kind    string // for messages
	records []byte
	keys    []byte
	// version points to a record's Version.
	version func(*T) *int64
	// omit, if set, clears in a copy of a record what is not stored in
	// its JSON (a certificate's chain).
	omit func(*T)
}

var (
	accounts = table[storage.Account]{kind: "account", records: []byte("accounts"), keys: []byte("account_ids"),
		version: func(a *storage.Account) *int64 { return &a.Version }}
	orders = table[storage.Order]{kind: "order", records: []byte("orders"), keys: []byte("order_ids"),
		version: func(o *storage.Order) *int64 { return &o.Version }}
	authzs = table[storage.Authorization]{kind: "authz", records: []byte("authzs"), keys: []byte("authz_ids"),
		version: func(a *storage.Authorization) *int64 { return &a.Version }}
	certificates = table[storage.Certificate]{kind: "certificate", records: []byte("certificates"), keys: []byte("certificate_serials"),
		version: func(c *storage.Certificate) *int64 { return &c.Version },
		omit:    func(c *storage.Certificate) { c.ChainPEM = nil }}
	registrations = table[storage.Registration]{kind: "registration", records: []byte("registrations"), keys: []byte("registration_keys"),
		version: func(r *storage.Registration) *int64 { return &r.Version }}
	// Audit entries have no Version: they are never updated.
	audit = table[storage.AuditEntry]{kind: "audit entry", records: []byte("audit"), keys: []byte("audit_ids"),
		version: func(*storage.AuditEntry) *int64 { return new(int64) }}
)

// appending returns b set up for writes at its end (see appendFill).
func appending(b *bolt.Bucket) *bolt.Bucket {
	b.FillPercent = appendFill
	return b
}

// put is b.Put with an error that says what was written. Put fails only
// for keys that are empty or too long (32 KiB) and values too long (2 GiB).
func put(b *bolt.Bucket, key, value []byte, what string) error {
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("boltstore: store %s %q: %w", what, key, err)
	}
	return nil
}

// load decodes the record at seq.
func (t table[T]) load(tx *bolt.Tx, seq []byte) (*T, error) {
	v := new(T)
	return v, t.decode(tx, seq, v)
}

// decode decodes the record at seq into v, all of it or the fields v has.
func (t table[T]) decode(tx *bolt.Tx, seq []byte, v any) error {
	if err := json.Unmarshal(tx.Bucket(t.records).Get(seq), v); err != nil {
		return fmt.Errorf("boltstore: %s record %x: %w", t.kind, seq, err)
	}
	return nil
}

// get returns the record named key and its sequence, or ErrNotFound.
func (t table[T]) get(tx *bolt.Tx, key string) (*T, []byte, error) {
	seq := tx.Bucket(t.keys).Get([]byte(key))
	if seq == nil {
		return nil, nil, notFound(t.kind, key)
	}
	v, err := t.load(tx, seq)
	return v, seq, err
}

// insert stores value as the new record named key and returns its sequence;
// ErrConflict when the key is taken.
func (t table[T]) insert(tx *bolt.Tx, key string, value []byte) ([]byte, error) {
	keys := tx.Bucket(t.keys)
	if keys.Get([]byte(key)) != nil {
		return nil, taken(t.kind, key)
	}
	records := appending(tx.Bucket(t.records))
	n, err := records.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("boltstore: %s sequence: %w", t.kind, err)
	}
	seq := binary.BigEndian.AppendUint64(nil, n)
	if err := put(records, seq, value, t.kind); err != nil {
		return nil, err
	}
	return seq, put(keys, []byte(key), seq, t.kind)
}

// remove deletes the record named key, at seq. Its sequence number is not
// used again.
func (t table[T]) remove(tx *bolt.Tx, key string, seq []byte) error {
	return deleteKeys(tx, t.kind+" "+key, entry{t.records, seq}, entry{t.keys, []byte(key)})
}

// swap writes value over the record named key when the stored one is at
// version, and returns its sequence and, with keepOld, the stored record;
// ErrConflict when its version differs, ErrNotFound when there is none.
// Without keepOld it decodes the version only: swaps run in the one writer.
func (t table[T]) swap(tx *bolt.Tx, key string, version int64, value []byte, keepOld bool) (*T, []byte, error) {
	seq := tx.Bucket(t.keys).Get([]byte(key))
	if seq == nil {
		return nil, nil, notFound(t.kind, key)
	}
	var old *T
	var stored struct {
		Version int64 `json:"version"`
	}
	if keepOld {
		o, err := t.load(tx, seq)
		if err != nil {
			return nil, nil, err
		}
		old, stored.Version = o, *t.version(o)
	} else if err := t.decode(tx, seq, &stored); err != nil {
		return nil, nil, err
	}
	if v := stored.Version; v != version {
		return nil, nil, fmt.Errorf("boltstore: %s %q is at version %d, not %d: %w", t.kind, key, v, version, storage.ErrConflict)
	}
	// Delete first: bbolt merges a page with its neighbour only after a
	// delete, and without that the pages of orders, which grow by their
	// CSR and shrink again, end up a third full.
	records := appending(tx.Bucket(t.records))
	if err := records.Delete(seq); err != nil {
		return nil, nil, fmt.Errorf("boltstore: store %s %q: %w", t.kind, key, err)
	}
	if err := put(records, seq, value, t.kind); err != nil {
		return nil, nil, err
	}
	return old, seq, nil
}

// createRecord stores a copy of v with Version 1 as the new record named
// key, and runs also, if any, in the same transaction with the copy and its
// sequence, to write indexes. Once it is stored, v's Version is 1.
func createRecord[T any](ctx context.Context, s *Store, t table[T], key string, v *T,
	also func(tx *bolt.Tx, rec *T, seq []byte) error) error {
	rec := *v
	*t.version(&rec) = 1
	value, err := t.encode(key, &rec)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *bolt.Tx) error {
		seq, err := t.insert(tx, key, value)
		if err != nil || also == nil {
			return err
		}
		return also(tx, &rec, seq)
	})
	if err != nil {
		return err
	}
	*t.version(v) = 1
	return nil
}

// updateRecord writes a copy of v with Version incremented over the stored
// record named key when that one is at v's Version, and runs also, if any,
// in the same transaction with the record as it was, the copy and its
// sequence, to keep indexes. Once it is stored, v's Version is incremented.
func updateRecord[T any](ctx context.Context, s *Store, t table[T], key string, v *T,
	also func(tx *bolt.Tx, old, rec *T, seq []byte) error) error {
	rec := *v
	*t.version(&rec)++
	value, err := t.encode(key, &rec)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *bolt.Tx) error {
		old, seq, err := t.swap(tx, key, *t.version(v), value, also != nil)
		if err != nil || also == nil {
			return err
		}
		return also(tx, old, &rec, seq)
	})
	if err != nil {
		return err
	}
	*t.version(v)++
	return nil
}

// getRecord returns a copy of the record named key.
func getRecord[T any](ctx context.Context, s *Store, t table[T], key string) (*T, error) {
	var rec *T
	err := s.read(ctx, func(tx *bolt.Tx) (err error) {
		rec, _, err = t.get(tx, key)
		return err
	})
	return rec, err
}

// encode returns rec as stored. It runs before a transaction, so that
// writers hold bbolt's one writer as briefly as they can.
func (t table[T]) encode(key string, rec *T) ([]byte, error) {
	if t.omit != nil {
		c := *rec
		t.omit(&c)
		rec = &c
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("boltstore: encode %s %q: %w", t.kind, key, err)
	}
	return b, nil
}

// timeKeyLen is the length of a timeKey.
const timeKeyLen = 12

// timeKey appends to b a 12-byte key of t that sorts as times do: seconds
// since 1970 with the sign bit flipped, then nanoseconds, both big-endian.
// It covers every time.Time, not only UnixNano's years 1678 to 2262.
func timeKey(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^1<<63)
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// part appends s to b after its length, so that keys made of parts group
// by their first parts and no part runs into the next.
func part(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
