package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// CreateRegistration implements storage.Registrations.
func (s *Store) CreateRegistration(_ context.Context, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return fmt.Errorf("memory: registration key id %q is not 1 to 64 characters of [A-Za-z0-9_-]", r.KeyID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.regs.free(r.KeyID); err != nil {
		return err
	}
	s.regs.insert(r)
	i, _ := slices.BinarySearch(s.regKeys, r.KeyID)
	s.regKeys = slices.Insert(s.regKeys, i, r.KeyID)
	return nil
}

// GetRegistration implements storage.Registrations.
func (s *Store) GetRegistration(_ context.Context, keyID string) (*storage.Registration, error) {
	return getRecord(s, s.regs, keyID)
}

// UpdateRegistration implements storage.Registrations.
func (s *Store) UpdateRegistration(_ context.Context, r *storage.Registration) error {
	return updateRecord(s, s.regs, r, nil)
}

// DeleteRegistration implements storage.Registrations.
func (s *Store) DeleteRegistration(_ context.Context, keyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.regs.records[keyID]; !ok {
		return notFound("registration", keyID)
	}
	delete(s.regs.records, keyID)
	if i, ok := slices.BinarySearch(s.regKeys, keyID); ok {
		s.regKeys = slices.Delete(s.regKeys, i, i+1)
	}
	return nil
}

// ListRegistrations implements storage.Registrations. Its cursor is the
// last key id returned.
func (s *Store) ListRegistrations(_ context.Context, cursor string, limit int) ([]*storage.Registration, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListRegistrations limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := listing.Page(s.regKeys, func(k string) string { return k }, cursor, limit)
	regs := make([]*storage.Registration, len(page))
	for j, k := range page {
		regs[j] = copyRegistration(s.regs.records[k])
	}
	return regs, next, nil
}

// BindAccount implements storage.Registrations.
func (s *Store) BindAccount(_ context.Context, a *storage.Account, r *storage.Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.regs.current(r)
	if err != nil {
		return err
	}
	if id := old.AccountID; id != "" {
		return fmt.Errorf("memory: registration %q is bound to account %q: %w", r.KeyID, id, storage.ErrConflict)
	}
	if err := s.accountFree(a); err != nil {
		return err
	}
	acct := copyAccount(a)
	acct.RegistrationID = r.KeyID
	s.insertAccount(acct)
	a.RegistrationID, a.Version = acct.RegistrationID, acct.Version
	r.AccountID = a.ID
	s.regs.replace(r)
	return nil
}

func copyRegistration(r *storage.Registration) *storage.Registration {
	c := *r
	c.HMACKey = slices.Clone(r.HMACKey)
	c.AllowedDomains = slices.Clone(r.AllowedDomains)
	c.Emails = slices.Clone(r.Emails)
	c.Profiles = slices.Clone(r.Profiles)
	return &c
}
