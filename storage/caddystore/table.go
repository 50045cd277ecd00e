package caddystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// table is one kind of record: which ids it admits, where a record is
// stored, and how a record names and versions itself.
type table[T any] struct {
	kind string // for messages
	// valid reports whether id may name a record; any other is never found.
	valid   func(id string) bool
	key     func(s *Store, id string) string
	id      func(*T) string
	version func(*T) *int64
}

var (
	accounts = table[storage.Account]{kind: "account", valid: safe, key: (*Store).accountKey,
		id: func(a *storage.Account) string { return a.ID }, version: func(a *storage.Account) *int64 { return &a.Version }}
	orders = table[storage.Order]{kind: "order", valid: safe, key: (*Store).orderKey,
		id: func(o *storage.Order) string { return o.ID }, version: func(o *storage.Order) *int64 { return &o.Version }}
	authzs = table[storage.Authorization]{kind: "authz", valid: safe, key: (*Store).authzKey,
		id: func(a *storage.Authorization) string { return a.ID }, version: func(a *storage.Authorization) *int64 { return &a.Version }}
	certificates = table[storage.Certificate]{kind: "certificate", valid: safe, key: (*Store).certKey,
		id: func(c *storage.Certificate) string { return c.Serial }, version: func(c *storage.Certificate) *int64 { return &c.Version }}
	registrations = table[storage.Registration]{kind: "registration", valid: storage.ValidKeyID, key: (*Store).registrationKey,
		id: func(r *storage.Registration) string { return r.KeyID }, version: func(r *storage.Registration) *int64 { return &r.Version }}
)

func (t table[T]) notFound(id string) error {
	return fmt.Errorf("caddystore: %s %q: %w", t.kind, id, storage.ErrNotFound)
}

// getRecord loads the record of t named id.
func getRecord[T any](ctx context.Context, s *Store, t table[T], id string) (*T, error) {
	if !t.valid(id) {
		return nil, t.notFound(id)
	}
	v := new(T)
	if err := s.load(ctx, t.key(s, id), v); err != nil {
		return nil, err
	}
	if t.id(v) != id { // a case-insensitive file system matched another id
		return nil, t.notFound(id)
	}
	return v, nil
}

// current returns the stored record that v names when it is at v's
// Version, else ErrConflict. The caller holds the record's lock.
func current[T any](ctx context.Context, s *Store, t table[T], v *T) (*T, error) {
	id := t.id(v)
	old, err := getRecord(ctx, s, t, id)
	if err != nil {
		return nil, err
	}
	if stored, given := *t.version(old), *t.version(v); stored != given {
		return nil, conflict(t.kind, id, stored, given)
	}
	return old, nil
}

// updateRecord is the compare-and-swap of v on t: holding the record's
// lock, it writes v with its Version incremented when the stored record is
// at v's Version, and then increments v's. around, if set, gets the stored
// record and the write, and makes the write itself, to keep indexes on
// either side of it; v's Version moves only when around returns nil.
func updateRecord[T any](ctx context.Context, s *Store, t table[T], v *T, around func(old *T, write func() error) error) error {
	id := t.id(v)
	if !t.valid(id) {
		return t.notFound(id)
	}
	key := t.key(s, id)
	return s.locked(ctx, key, func() error {
		old, err := current(ctx, s, t, v)
		if err != nil {
			return err
		}
		rec := *v
		*t.version(&rec)++
		write := func() error { return s.put(ctx, key, &rec) }
		if around != nil {
			err = around(old, write)
		} else {
			err = write()
		}
		if err != nil {
			return err
		}
		*t.version(v) = *t.version(&rec)
		return nil
	})
}

// absent returns nil when nothing is stored where the record of t named id
// would be, and ErrConflict when something is. The caller holds the key's
// lock. Any record there counts, even one whose id differs in case on a
// case-insensitive file system.
func absent[T any](ctx context.Context, s *Store, t table[T], id string) error {
	switch err := s.load(ctx, t.key(s, id), new(T)); {
	case err == nil:
		return fmt.Errorf("caddystore: %s %q: %w", t.kind, id, storage.ErrConflict)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	return nil
}

// claimID stores a record that is never updated under a new id: the id's
// key (holding value) is written first and claims the id, then write
// stores the record; an id claimed before is ErrConflict. A crash in
// between loses one record whose id is then taken, which a caller with
// random ids never notices.
func (s *Store) claimID(ctx context.Context, kind, id, idKey, value string, write func() error) error {
	if !safe(id) {
		return unsafeName(kind+" id", id)
	}
	return s.locked(ctx, idKey, func() error {
		switch _, err := s.loadString(ctx, idKey); {
		case err == nil:
			return fmt.Errorf("caddystore: %s %q: %w", kind, id, storage.ErrConflict)
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if err := s.putString(ctx, idKey, value); err != nil {
			return err
		}
		return write()
	})
}
