// Package caddystore is a storage backend on certmagic.Storage, so that the
// gateway keeps its records wherever Caddy keeps certificates: the local file
// system by default, or any clustered storage module. Several gateway
// processes may share one storage.
//
// Records are JSON values under a prefix (one per gateway):
//
//	<prefix>/accounts/<id>.json
//	<prefix>/account_keys/<thumbprint>                       -> account id
//	<prefix>/orders/<id>.json
//	<prefix>/account_orders/<account id>/<created ns>.<id>   -> order id
//	<prefix>/authz/<id>.json
//	<prefix>/valid_authz/<account id>/<identifier hash>/<id> -> authz id
//	<prefix>/certificates/<serial>.json
//	<prefix>/account_index/<created ns>.<id>                 -> account id
//	<prefix>/certificate_index/<issued ns>.<serial>          -> serial
//	<prefix>/registrations/<key id>.json
//	<prefix>/audit/<time ns>.<id>.json
//	<prefix>/audit_ids/<id>                                  -> <time ns>.<id>
//	<prefix>/renewal_rules/<scope hash>/<id>.json
//	<prefix>/renewal_rule_ids/<id>                           -> its rule's directory
//	<prefix>/replacement_claims/<serial>                     -> order id
//	<prefix>/expiry/<YYYY-MM-DD>/o-<id> or a-<id>            -> order or authz id
//
// The index keys are hints: every lookup through one loads the record and
// checks it, so an index entry left behind by a crash between two writes is
// ignored. Compare-and-swap and unique keys hold a certmagic lock (and, within
// the process, a mutex) on the record's key around load, compare and store;
// reads take no lock. Ids, thumbprints and serials must be base64url or hex,
// which is what the gateway generates; anything else is never found.
// Registration key ids, chosen by officers, must be storage.ValidKeyID.
//
// Officers' listings (ListAccounts, ListCertificates) list the whole
// creation-ordered index and load records until a page is full, so each
// page is O(n) in the number of accounts or certificates: fine for an
// officer's occasional look, not for a hot path. Accounts and certificates
// stored before the indexes existed are not listed. A renewal-information
// request lists too: RenewalRulesFor lists the directory of each of its 3-4
// rule scopes (the certificate, its account, its registration when it has
// one, and the issuer) and loads every rule there.
//
// Registrations are deleted by officers, and orders and authorizations that
// expired unfinished by DeleteExpired (see expiry.go); storage grows with
// every account, certificate, audit entry, renewal rule and replacement
// claim.
package caddystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Store is a storage.Store on a certmagic.Storage. It is safe for concurrent
// use by goroutines and by processes that share the underlying storage.
type Store struct {
	storage certmagic.Storage
	prefix  string
	local   keyLocks
}

// Prefix is where the gateway named name keeps its records in Caddy's
// storage.
func Prefix(name string) string { return "acme_gateway/" + name }

// New returns a store that keeps its records in s under prefix, for example
// Prefix(name); an empty prefix means "acme_gateway".
func New(s certmagic.Storage, prefix string) *Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = "acme_gateway"
	}
	return &Store{storage: s, prefix: prefix, local: keyLocks{m: make(map[string]*keyLock)}}
}

func (s *Store) accountKey(id string) string      { return s.prefix + "/accounts/" + id + ".json" }
func (s *Store) thumbprintKey(tp string) string   { return s.prefix + "/account_keys/" + tp }
func (s *Store) orderKey(id string) string        { return s.prefix + "/orders/" + id + ".json" }
func (s *Store) accountOrders(acct string) string { return s.prefix + "/account_orders/" + acct }
func (s *Store) authzKey(id string) string        { return s.prefix + "/authz/" + id + ".json" }
func (s *Store) certKey(serial string) string     { return s.prefix + "/certificates/" + serial + ".json" }
func (s *Store) accountIndex() string             { return s.prefix + "/account_index" }
func (s *Store) certificateIndex() string         { return s.prefix + "/certificate_index" }
func (s *Store) registrations() string            { return s.prefix + "/registrations" }
func (s *Store) registrationKey(keyID string) string {
	return s.registrations() + "/" + keyID + ".json"
}
func (s *Store) auditDir() string            { return s.prefix + "/audit" }
func (s *Store) auditIDKey(id string) string { return s.prefix + "/audit_ids/" + id }

// validAuthzDir is where the valid authorizations of an account for one
// identifier are indexed. Identifier values are hashed because they may hold
// characters that are not safe in a key ('*', ':').
func (s *Store) validAuthzDir(accountID string, ident storage.Identifier, wildcard bool) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%t", ident.Type, ident.Value, wildcard))
	return s.prefix + "/valid_authz/" + accountID + "/" + hex.EncodeToString(h[:16])
}

// safe reports whether name may be a key component: base64url or hex, as the
// gateway's ids, thumbprints and serials are. Anything else could climb out of
// the prefix ("..") or collide on case-folding file systems after mapping.
func safe(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func unsafeName(kind, name string) error {
	return fmt.Errorf("caddystore: %s %q is not base64url", kind, name)
}

// load reads the JSON record at key into v; a missing key is ErrNotFound.
func (s *Store) load(ctx context.Context, key string, v any) error {
	b, err := s.storage.Load(ctx, key)
	if err != nil {
		return s.failed("load", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("caddystore: decode %q: %w", key, err)
	}
	return nil
}

// loadString reads the index entry at key.
func (s *Store) loadString(ctx context.Context, key string) (string, error) {
	b, err := s.storage.Load(ctx, key)
	if err != nil {
		return "", s.failed("load", key, err)
	}
	return string(b), nil
}

func (s *Store) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("caddystore: encode %q: %w", key, err)
	}
	if err := s.storage.Store(ctx, key, b); err != nil {
		return s.failed("store", key, err)
	}
	return nil
}

func (s *Store) putString(ctx context.Context, key, value string) error {
	if err := s.storage.Store(ctx, key, []byte(value)); err != nil {
		return s.failed("store", key, err)
	}
	return nil
}

// failed maps a certmagic.Storage error: a missing key is ErrNotFound, a
// cancelled context stays itself, and anything else is ErrUnavailable.
func (s *Store) failed(op, key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("caddystore: %s %q: %w", op, key, storage.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("caddystore: %s %q: %w", op, key, err)
	default:
		return fmt.Errorf("caddystore: %s %q: %w: %w", op, key, storage.ErrUnavailable, err)
	}
}

func conflict(kind, key string, stored, given int64) error {
	return fmt.Errorf("caddystore: %s %q is at version %d, not %d: %w", kind, key, stored, given, storage.ErrConflict)
}

// locked runs fn holding the lock on key: first a mutex, so that goroutines
// of this process queue without polling the storage's lock, then the
// storage's lock, which excludes other processes.
func (s *Store) locked(ctx context.Context, key string, fn func() error) error {
	if err := s.local.lock(ctx, key); err != nil {
		return fmt.Errorf("caddystore: lock %q: %w", key, err)
	}
	defer s.local.unlock(key)
	name := lockName(key)
	if err := s.storage.Lock(ctx, name); err != nil {
		return s.failed("lock", key, err)
	}
	defer func() {
		// Whatever Unlock says, fn has already succeeded or failed; a lock
		// that cannot be released goes stale, and certmagic's lockers break
		// stale locks, so there is nothing better to do than carry on.
		_ = s.storage.Unlock(context.WithoutCancel(ctx), name)
	}()
	return fn()
}

// lockedAll runs fn holding the locks on keys, taken in lexical order so
// that two writers locking overlapping sets cannot deadlock.
func (s *Store) lockedAll(ctx context.Context, keys []string, fn func() error) error {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for i := len(keys) - 1; i >= 0; i-- {
		inner, key := fn, keys[i]
		fn = func() error { return s.locked(ctx, key, inner) }
	}
	return fn()
}

// lockName derives a lock name from a key. It is a hash because lockers
// rewrite names (FileStorage lower-cases them, which would merge ids that
// differ only in case).
func lockName(key string) string {
	h := sha256.Sum256([]byte(key))
	return "acme_gateway_" + hex.EncodeToString(h[:20])
}
