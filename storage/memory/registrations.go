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
	if _, ok := s.regs[r.KeyID]; ok {
		return fmt.Errorf("memory: registration %q: %w", r.KeyID, storage.ErrConflict)
	}
	r.Version = 1
	s.regs[r.KeyID] = copyRegistration(r)
	i, _ := slices.BinarySearch(s.regKeys, r.KeyID)
	s.regKeys = slices.Insert(s.regKeys, i, r.KeyID)
	return nil
}

// GetRegistration implements storage.Registrations.
func (s *Store) GetRegistration(_ context.Context, keyID string) (*storage.Registration, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.regs[keyID]
	if !ok {
		return nil, notFound("registration", keyID)
	}
	return copyRegistration(r), nil
}

// UpdateRegistration implements storage.Registrations.
func (s *Store) UpdateRegistration(_ context.Context, r *storage.Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.registrationCurrent(r); err != nil {
		return err
	}
	r.Version++
	s.regs[r.KeyID] = copyRegistration(r)
	return nil
}

// registrationCurrent returns nil when the stored registration has r's
// Version. The caller holds s.mu.
func (s *Store) registrationCurrent(r *storage.Registration) error {
	old, ok := s.regs[r.KeyID]
	if !ok {
		return notFound("registration", r.KeyID)
	}
	if old.Version != r.Version {
		return conflict("registration", r.KeyID, old.Version, r.Version)
	}
	return nil
}

// DeleteRegistration implements storage.Registrations.
func (s *Store) DeleteRegistration(_ context.Context, keyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.regs[keyID]; !ok {
		return notFound("registration", keyID)
	}
	delete(s.regs, keyID)
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
		regs[j] = copyRegistration(s.regs[k])
	}
	return regs, next, nil
}

// BindAccount implements storage.Registrations.
func (s *Store) BindAccount(_ context.Context, a *storage.Account, r *storage.Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.registrationCurrent(r); err != nil {
		return err
	}
	if id := s.regs[r.KeyID].AccountID; id != "" {
		return fmt.Errorf("memory: registration %q is bound to account %q: %w", r.KeyID, id, storage.ErrConflict)
	}
	if err := s.accountFree(a); err != nil {
		return err
	}
	acct := copyAccount(a)
	acct.RegistrationID, acct.Version = r.KeyID, 1
	s.insertAccount(acct)
	a.RegistrationID, a.Version = acct.RegistrationID, acct.Version
	r.AccountID = a.ID
	r.Version++
	s.regs[r.KeyID] = copyRegistration(r)
	return nil
}

func copyRegistration(r *storage.Registration) *storage.Registration {
	c := *r
	c.HMACKey = slices.Clone(r.HMACKey)
	c.AllowedDomains = slices.Clone(r.AllowedDomains)
	return &c
}
