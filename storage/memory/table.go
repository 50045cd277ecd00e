package memory

import (
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// table is one kind of record: the stored copies by key, and how to name,
// version and copy a record. Its methods leave locking to the caller, who
// holds s.mu.
type table[T any] struct {
	kind    string // for messages
	records map[string]*T
	key     func(*T) string
	version func(*T) *int64
	copy    func(*T) *T
}

func newTable[T any](kind string, key func(*T) string, version func(*T) *int64, copy func(*T) *T) table[T] {
	return table[T]{kind: kind, records: make(map[string]*T), key: key, version: version, copy: copy}
}

// get returns a copy of the record named key.
func (t table[T]) get(key string) (*T, error) {
	rec, ok := t.records[key]
	if !ok {
		return nil, notFound(t.kind, key)
	}
	return t.copy(rec), nil
}

// free returns ErrConflict when a record named key exists.
func (t table[T]) free(key string) error {
	if _, ok := t.records[key]; ok {
		return fmt.Errorf("memory: %s %q: %w", t.kind, key, storage.ErrConflict)
	}
	return nil
}

// insert sets v's Version to 1 and stores a copy of it.
func (t table[T]) insert(v *T) {
	*t.version(v) = 1
	t.records[t.key(v)] = t.copy(v)
}

// current returns the stored record that v names when it is at v's
// Version: ErrNotFound when there is none, ErrConflict when its Version
// differs.
func (t table[T]) current(v *T) (*T, error) {
	key := t.key(v)
	old, ok := t.records[key]
	if !ok {
		return nil, notFound(t.kind, key)
	}
	if stored, given := *t.version(old), *t.version(v); stored != given {
		return nil, conflict(t.kind, key, stored, given)
	}
	return old, nil
}

// replace increments v's Version and stores a copy of it over the record
// it names.
func (t table[T]) replace(v *T) {
	*t.version(v)++
	t.records[t.key(v)] = t.copy(v)
}

// getRecord returns a copy of the record of t named key.
func getRecord[T any](s *Store, t table[T], key string) (*T, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return t.get(key)
}

// updateRecord is the compare-and-swap of v on t: it replaces the stored
// record when that one is at v's Version. also, if set, runs in between
// with the stored record and v, to keep indexes; an error from it stores
// nothing. (A method expression, it costs no closure per call.)
func updateRecord[T any](s *Store, t table[T], v *T, also func(s *Store, old, v *T) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := t.current(v)
	if err != nil {
		return err
	}
	if also != nil {
		if err := also(s, old, v); err != nil {
			return err
		}
	}
	t.replace(v)
	return nil
}

func notFound(kind, key string) error {
	return fmt.Errorf("memory: %s %q: %w", kind, key, storage.ErrNotFound)
}

func conflict(kind, key string, stored, given int64) error {
	return fmt.Errorf("memory: %s %q is at version %d, not %d: %w", kind, key, stored, given, storage.ErrConflict)
}
