// Package memory is a storage backend that keeps every record in process
// memory: for tests, benchmarks and single-instance gateways that may forget
// everything on restart. Records are copied in and out, so callers never
// share memory with the store.
//
// Registrations are deleted by officers, and orders and authorizations that
// expired unfinished by DeleteExpired; memory grows with every account,
// certificate, audit entry, renewal rule and replacement claim until the
// process exits.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// Store is an in-memory storage.Store. The zero value is not usable; call
// New. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	accounts table[storage.Account]
	byKey    map[string]string // key thumbprint -> account id
	orders   table[storage.Order]
	// accountOrders holds each account's orders sorted by listing.Key.
	accountOrders map[string][]listEntry
	authzs        table[storage.Authorization]
	// valid indexes the authorizations whose Status is valid, oldest first;
	// ValidAuthz still checks each one, since expiry depends on its now.
	valid map[authzKey][]string
	certs table[storage.Certificate]
	// accountList and certList hold every account and certificate sorted
	// by listing.Key of CreatedAt or IssuedAt, for officers' listings.
	accountList []listEntry
	certList    []listEntry
	regs        table[storage.Registration]
	regKeys     []string // sorted
	audit       []auditRecord
	auditIDs    map[string]bool
	rules       renewalRules
	claims      replacementClaims
}

// listEntry is a record's sort key (see listing.Key) and its id.
type listEntry struct{ key, id string }

func (e listEntry) sortKey() string { return e.key }

// insertEntry adds e to list, which is sorted by key.
func insertEntry[E any](list []E, e E, key func(E) string) []E {
	if n := len(list); n == 0 || key(list[n-1]) < key(e) {
		return append(list, e) // the common case
	}
	i := sort.Search(len(list), func(i int) bool { return key(list[i]) > key(e) })
	return slices.Insert(list, i, e)
}

type authzKey struct {
	accountID, typ, value string
	wildcard              bool
}

func keyOf(a *storage.Authorization) authzKey {
	return authzKey{a.AccountID, a.Identifier.Type, a.Identifier.Value, a.Wildcard}
}

// New returns an empty store.
func New() *Store {
	return &Store{
		accounts: newTable("account", func(a *storage.Account) string { return a.ID },
			func(a *storage.Account) *int64 { return &a.Version }, copyAccount),
		byKey: make(map[string]string),
		orders: newTable("order", func(o *storage.Order) string { return o.ID },
			func(o *storage.Order) *int64 { return &o.Version }, copyOrder),
		accountOrders: make(map[string][]listEntry),
		authzs: newTable("authz", func(a *storage.Authorization) string { return a.ID },
			func(a *storage.Authorization) *int64 { return &a.Version }, copyAuthz),
		valid: make(map[authzKey][]string),
		certs: newTable("certificate", func(c *storage.Certificate) string { return c.Serial },
			func(c *storage.Certificate) *int64 { return &c.Version }, copyCertificate),
		regs: newTable("registration", func(r *storage.Registration) string { return r.KeyID },
			func(r *storage.Registration) *int64 { return &r.Version }, copyRegistration),
		auditIDs: make(map[string]bool),
		rules: renewalRules{
			byScope: make(map[storage.RenewalScope][]storage.RenewalRule),
			ids:     make(map[string]bool),
		},
		claims: replacementClaims{orders: make(map[string]string)},
	}
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(_ context.Context, a *storage.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.accountFree(a); err != nil {
		return err
	}
	s.insertAccount(a)
	return nil
}

// accountFree returns ErrConflict when a's id or key is taken. The caller
// holds s.mu.
func (s *Store) accountFree(a *storage.Account) error {
	if err := s.accounts.free(a.ID); err != nil {
		return err
	}
	if _, ok := s.byKey[a.KeyThumbprint]; ok {
		return fmt.Errorf("memory: account key: %w", storage.ErrConflict)
	}
	return nil
}

// insertAccount stores a copy of a, which accountFree has admitted, with
// Version 1. The caller holds s.mu.
func (s *Store) insertAccount(a *storage.Account) {
	s.accounts.insert(a)
	s.byKey[a.KeyThumbprint] = a.ID
	s.accountList = insertEntry(s.accountList, listEntry{listing.Key(a.CreatedAt, a.ID), a.ID}, listEntry.sortKey)
}

// GetAccount implements storage.Accounts.
func (s *Store) GetAccount(_ context.Context, id string) (*storage.Account, error) {
	return getRecord(s, s.accounts, id)
}

// AccountByThumbprint implements storage.Accounts.
func (s *Store) AccountByThumbprint(_ context.Context, thumbprint string) (*storage.Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byKey[thumbprint]
	if !ok {
		return nil, fmt.Errorf("memory: account key: %w", storage.ErrNotFound)
	}
	return s.accounts.get(id)
}

// UpdateAccount implements storage.Accounts.
func (s *Store) UpdateAccount(_ context.Context, a *storage.Account) error {
	return updateRecord(s, s.accounts, a, (*Store).rekeyAccount)
}

// rekeyAccount moves the key index from old's key to a's, unless another
// account holds a's. The caller holds s.mu.
func (s *Store) rekeyAccount(old, a *storage.Account) error {
	if a.KeyThumbprint != old.KeyThumbprint {
		if _, ok := s.byKey[a.KeyThumbprint]; ok {
			return fmt.Errorf("memory: account key: %w", storage.ErrConflict)
		}
		delete(s.byKey, old.KeyThumbprint)
		s.byKey[a.KeyThumbprint] = a.ID
	}
	return nil
}

// The copies below are written out field by field rather than through JSON
// because the store copies on every call and is benchmarked for throughput.

func copyAccount(a *storage.Account) *storage.Account {
	c := *a
	c.KeyJWK = slices.Clone(a.KeyJWK)
	c.Contact = slices.Clone(a.Contact)
	return &c
}

func copyOrder(o *storage.Order) *storage.Order {
	c := *o
	c.Identifiers = slices.Clone(o.Identifiers)
	c.AuthzIDs = slices.Clone(o.AuthzIDs)
	c.CSR = slices.Clone(o.CSR)
	c.Error = slices.Clone(o.Error)
	return &c
}

func copyAuthz(a *storage.Authorization) *storage.Authorization {
	c := *a
	c.Challenges = slices.Clone(a.Challenges)
	for i := range c.Challenges {
		c.Challenges[i].Error = slices.Clone(c.Challenges[i].Error)
	}
	return &c
}

func copyCertificate(c *storage.Certificate) *storage.Certificate {
	d := *c
	d.Names = slices.Clone(c.Names)
	d.ChainPEM = slices.Clone(c.ChainPEM)
	return &d
}
