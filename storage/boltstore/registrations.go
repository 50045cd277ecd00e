package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// CreateRegistration implements storage.Registrations.
func (s *Store) CreateRegistration(ctx context.Context, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return fmt.Errorf("boltstore: registration key id %q is not 1 to 64 characters of [A-Za-z0-9_-]", r.KeyID)
	}
	return createRecord(ctx, s, registrations, r.KeyID, r, nil)
}

// GetRegistration implements storage.Registrations. A key id that is not
// valid was never stored, so it is not found like any unknown one.
func (s *Store) GetRegistration(ctx context.Context, keyID string) (*storage.Registration, error) {
	return getRecord(ctx, s, registrations, keyID)
}

// UpdateRegistration implements storage.Registrations.
func (s *Store) UpdateRegistration(ctx context.Context, r *storage.Registration) error {
	return updateRecord(ctx, s, registrations, r.KeyID, r, nil)
}

// DeleteRegistration implements storage.Registrations.
func (s *Store) DeleteRegistration(ctx context.Context, keyID string) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		seq := tx.Bucket(registrations.keys).Get([]byte(keyID))
		if seq == nil {
			return notFound(registrations.kind, keyID)
		}
		return registrations.remove(tx, keyID, seq)
	})
}

// ListRegistrations implements storage.Registrations. Its cursor names the
// last key id listed.
func (s *Store) ListRegistrations(ctx context.Context, cursor string, limit int) ([]*storage.Registration, string, error) {
	all := registrations.matching(func(*storage.Registration) bool { return true })
	return list(ctx, s, registrations.keys, nil, cursor, limit, all)
}

// BindAccount implements storage.Registrations: the account and the swap of
// the registration are one transaction.
func (s *Store) BindAccount(ctx context.Context, a *storage.Account, r *storage.Registration) error {
	acct, reg := *a, *r
	acct.RegistrationID = r.KeyID
	reg.AccountID, reg.Version = a.ID, r.Version+1
	regValue, err := registrations.encode(r.KeyID, &reg)
	if err != nil {
		return err
	}
	err = createRecord(ctx, s, accounts, a.ID, &acct, func(tx *bolt.Tx, rec *storage.Account, seq []byte) error {
		old, _, err := registrations.swap(tx, r.KeyID, r.Version, regValue, true)
		if err != nil {
			return err
		}
		if old.AccountID != "" {
			// Returning an error rolls back the account and the swap.
			return fmt.Errorf("boltstore: registration %q is bound to account %q: %w", r.KeyID, old.AccountID, storage.ErrConflict)
		}
		return indexAccount(tx, rec, seq)
	})
	if err != nil {
		return err
	}
	a.RegistrationID, a.Version = acct.RegistrationID, acct.Version
	r.AccountID, r.Version = reg.AccountID, reg.Version
	return nil
}
