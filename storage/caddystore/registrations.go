package caddystore

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// CreateRegistration implements storage.Registrations.
func (s *Store) CreateRegistration(ctx context.Context, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return fmt.Errorf("caddystore: registration key id %q is not 1 to 64 characters of [A-Za-z0-9_-]", r.KeyID)
	}
	key := s.registrationKey(r.KeyID)
	return s.locked(ctx, key, func() error {
		if err := absent(ctx, s, registrations, r.KeyID); err != nil {
			return err
		}
		rec := *r
		rec.Version = 1
		if err := s.put(ctx, key, &rec); err != nil {
			return err
		}
		r.Version = 1
		return nil
	})
}

// GetRegistration implements storage.Registrations.
func (s *Store) GetRegistration(ctx context.Context, keyID string) (*storage.Registration, error) {
	return getRecord(ctx, s, registrations, keyID)
}

// UpdateRegistration implements storage.Registrations.
func (s *Store) UpdateRegistration(ctx context.Context, r *storage.Registration) error {
	return updateRecord(ctx, s, registrations, r, nil)
}

// DeleteRegistration implements storage.Registrations.
func (s *Store) DeleteRegistration(ctx context.Context, keyID string) error {
	if !storage.ValidKeyID(keyID) {
		return registrations.notFound(keyID)
	}
	key := s.registrationKey(keyID)
	return s.locked(ctx, key, func() error {
		if _, err := s.GetRegistration(ctx, keyID); err != nil {
			return err
		}
		if err := s.storage.Delete(ctx, key); err != nil {
			return s.failed("delete", key, err)
		}
		return nil
	})
}

// ListRegistrations implements storage.Registrations. Its cursor is the
// last key id returned. It lists every registration's key for each page.
func (s *Store) ListRegistrations(ctx context.Context, cursor string, limit int) ([]*storage.Registration, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("caddystore: ListRegistrations limit %d is not positive", limit)
	}
	ids, err := s.recordNames(ctx, s.registrations(), storage.ValidKeyID)
	if err != nil {
		return nil, "", err
	}
	i := sort.SearchStrings(ids, cursor)
	if i < len(ids) && ids[i] == cursor {
		i++
	}
	var regs []*storage.Registration
	for ; i < len(ids) && len(regs) < limit; i++ {
		r, err := s.GetRegistration(ctx, ids[i])
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, "", err
		}
		regs = append(regs, r)
	}
	var next string
	if i < len(ids) && len(regs) > 0 {
		next = regs[len(regs)-1].KeyID
	}
	return regs, next, nil
}

// BindAccount implements storage.Registrations. It holds the registration's
// lock around the whole of CreateAccount and writes the registration last:
// that write is the commit point, and when it fails the account is deleted
// again. A crash just before it leaves an account that names the
// registration while the registration names none; the registration can
// then still be bound once more.
func (s *Store) BindAccount(ctx context.Context, a *storage.Account, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return registrations.notFound(r.KeyID)
	}
	key := s.registrationKey(r.KeyID)
	return s.locked(ctx, key, func() error {
		old, err := current(ctx, s, registrations, r)
		if err != nil {
			return err
		}
		if old.AccountID != "" {
			return fmt.Errorf("caddystore: registration %q is bound to account %q: %w", r.KeyID, old.AccountID, storage.ErrConflict)
		}
		rec := *r
		rec.AccountID, rec.Version = a.ID, r.Version+1
		err = s.createAccount(ctx, a, r.KeyID, func() error { return s.put(ctx, key, &rec) })
		if err != nil {
			return err
		}
		r.AccountID, r.Version = rec.AccountID, rec.Version
		return nil
	})
}
