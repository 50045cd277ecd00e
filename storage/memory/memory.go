// Package memory is a storage backend that keeps every record in process
// memory: for tests, benchmarks and single-instance gateways that may forget
// everything on restart. Records are copied in and out, so callers never
// share memory with the store.
//
// Nothing is ever deleted: memory grows with every account, order,
// authorization and certificate until the process exits.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Store is an in-memory storage.Store. The zero value is not usable; call
// New. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	accounts map[string]*storage.Account
	byKey    map[string]string // key thumbprint -> account id
	orders   map[string]*storage.Order
	// accountOrders holds each account's orders sorted by listKey.
	accountOrders map[string][]orderEntry
	authzs        map[string]*storage.Authorization
	// valid indexes the authorizations whose Status is valid, oldest first;
	// ValidAuthz still checks each one, since expiry depends on its now.
	valid map[authzKey][]string
	certs map[string]*storage.Certificate
}

type orderEntry struct{ key, id string }

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
		accounts:      make(map[string]*storage.Account),
		byKey:         make(map[string]string),
		orders:        make(map[string]*storage.Order),
		accountOrders: make(map[string][]orderEntry),
		authzs:        make(map[string]*storage.Authorization),
		valid:         make(map[authzKey][]string),
		certs:         make(map[string]*storage.Certificate),
	}
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(_ context.Context, a *storage.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[a.ID]; ok {
		return fmt.Errorf("memory: account %q: %w", a.ID, storage.ErrConflict)
	}
	if _, ok := s.byKey[a.KeyThumbprint]; ok {
		return fmt.Errorf("memory: account key: %w", storage.ErrConflict)
	}
	a.Version = 1
	s.accounts[a.ID] = copyAccount(a)
	s.byKey[a.KeyThumbprint] = a.ID
	return nil
}

// GetAccount implements storage.Accounts.
func (s *Store) GetAccount(_ context.Context, id string) (*storage.Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[id]
	if !ok {
		return nil, notFound("account", id)
	}
	return copyAccount(a), nil
}

// AccountByThumbprint implements storage.Accounts.
func (s *Store) AccountByThumbprint(_ context.Context, thumbprint string) (*storage.Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byKey[thumbprint]
	if !ok {
		return nil, fmt.Errorf("memory: account key: %w", storage.ErrNotFound)
	}
	return copyAccount(s.accounts[id]), nil
}

// UpdateAccount implements storage.Accounts.
func (s *Store) UpdateAccount(_ context.Context, a *storage.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.accounts[a.ID]
	if !ok {
		return notFound("account", a.ID)
	}
	if old.Version != a.Version {
		return conflict("account", a.ID, old.Version, a.Version)
	}
	if a.KeyThumbprint != old.KeyThumbprint {
		if _, ok := s.byKey[a.KeyThumbprint]; ok {
			return fmt.Errorf("memory: account key: %w", storage.ErrConflict)
		}
		delete(s.byKey, old.KeyThumbprint)
		s.byKey[a.KeyThumbprint] = a.ID
	}
	a.Version++
	s.accounts[a.ID] = copyAccount(a)
	return nil
}

func notFound(kind, key string) error {
	return fmt.Errorf("memory: %s %q: %w", kind, key, storage.ErrNotFound)
}

func conflict(kind, key string, stored, given int64) error {
	return fmt.Errorf("memory: %s %q is at version %d, not %d: %w", kind, key, stored, given, storage.ErrConflict)
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
