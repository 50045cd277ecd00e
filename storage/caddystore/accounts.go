package caddystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// CreateAccount implements storage.Accounts. Like every account write, it
// locks the account first and then key thumbprints, in lexical order.
func (s *Store) CreateAccount(ctx context.Context, a *storage.Account) error {
	return s.createAccount(ctx, a, a.RegistrationID, nil)
}

// createAccount stores a with RegistrationID regID, as CreateAccount does,
// and then runs commit, if any, still holding the account's locks: commit is
// what makes the account count, so when it fails the account is deleted
// again (best effort; index entries left behind are ignored).
func (s *Store) createAccount(ctx context.Context, a *storage.Account, regID string, commit func() error) error {
	if !safe(a.ID) {
		return unsafeName("account id", a.ID)
	}
	if !safe(a.KeyThumbprint) {
		return unsafeName("key thumbprint", a.KeyThumbprint)
	}
	key := s.accountKey(a.ID)
	return s.locked(ctx, key, func() error {
		if err := absent(ctx, s, accounts, a.ID); err != nil {
			return err
		}
		return s.locked(ctx, s.thumbprintKey(a.KeyThumbprint), func() error {
			if err := s.keyFree(ctx, a.KeyThumbprint, a.ID); err != nil {
				return err
			}
			rec := *a
			rec.Version, rec.RegistrationID = 1, regID
			// The indexes first: until the account exists, they point
			// nowhere and lookups through them find nothing.
			if err := s.putString(ctx, s.thumbprintKey(a.KeyThumbprint), a.ID); err != nil {
				return err
			}
			if err := s.putString(ctx, s.accountIndex()+"/"+listing.Key(a.CreatedAt, a.ID), a.ID); err != nil {
				return err
			}
			if err := s.put(ctx, key, &rec); err != nil {
				return err
			}
			if commit != nil {
				if err := commit(); err != nil {
					_ = s.storage.Delete(context.WithoutCancel(ctx), key)
					return err
				}
			}
			a.Version, a.RegistrationID = rec.Version, rec.RegistrationID
			return nil
		})
	})
}

// GetAccount implements storage.Accounts.
func (s *Store) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	return getRecord(ctx, s, accounts, id)
}

// AccountByThumbprint implements storage.Accounts.
func (s *Store) AccountByThumbprint(ctx context.Context, thumbprint string) (*storage.Account, error) {
	notFound := fmt.Errorf("caddystore: account key %q: %w", thumbprint, storage.ErrNotFound)
	if !safe(thumbprint) {
		return nil, notFound
	}
	id, err := s.loadString(ctx, s.thumbprintKey(thumbprint))
	if err != nil {
		return nil, err
	}
	a, err := s.GetAccount(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && a.KeyThumbprint != thumbprint {
		return nil, notFound // a stale index entry
	}
	return a, err
}

// keyFree returns nil when no account other than id holds thumbprint, and
// ErrConflict when one does. The caller holds the thumbprint's lock.
func (s *Store) keyFree(ctx context.Context, thumbprint, id string) error {
	switch holder, err := s.AccountByThumbprint(ctx, thumbprint); {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	case holder.ID != id:
		return fmt.Errorf("caddystore: account key %q: %w", thumbprint, storage.ErrConflict)
	}
	return nil
}

// UpdateAccount implements storage.Accounts.
func (s *Store) UpdateAccount(ctx context.Context, a *storage.Account) error {
	return updateRecord(ctx, s, accounts, a, func(old *storage.Account, write func() error) error {
		if a.KeyThumbprint == old.KeyThumbprint {
			return write()
		}
		if !safe(a.KeyThumbprint) {
			return unsafeName("key thumbprint", a.KeyThumbprint)
		}
		// Both keys are locked, so that no account can take the old key
		// before its index entry is gone.
		keys := []string{s.thumbprintKey(old.KeyThumbprint), s.thumbprintKey(a.KeyThumbprint)}
		return s.lockedAll(ctx, keys, func() error {
			if err := s.keyFree(ctx, a.KeyThumbprint, a.ID); err != nil {
				return err
			}
			if err := s.putString(ctx, keys[1], a.ID); err != nil {
				return err
			}
			if err := write(); err != nil {
				return err
			}
			// The rollover is done; an old index entry that cannot be
			// deleted no longer matches the account and is ignored.
			_ = s.storage.Delete(ctx, keys[0])
			return nil
		})
	})
}
