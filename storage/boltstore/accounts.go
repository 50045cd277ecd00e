package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a *storage.Account) error {
	return createRecord(ctx, s, accounts, a.ID, a, indexAccount)
}

// indexAccount adds the new account a, stored at seq, to the indexes of key
// thumbprints and of creation order; ErrConflict when its key is taken.
func indexAccount(tx *bolt.Tx, a *storage.Account, seq []byte) error {
	keys := tx.Bucket(accountThumbprints)
	if keys.Get([]byte(a.KeyThumbprint)) != nil {
		return taken("account key", a.KeyThumbprint)
	}
	if err := put(keys, []byte(a.KeyThumbprint), seq, "account key"); err != nil {
		return err
	}
	return put(appending(tx.Bucket(accountList)), append(timeKey(nil, a.CreatedAt), a.ID...), seq, "account")
}

// GetAccount implements storage.Accounts, from the cache of accounts when
// it holds id: only this process writes the file, so the cache is exact.
func (s *Store) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	if a, ok := s.cached.Get(id); ok {
		return a, nil
	}
	return s.cached.Load(id, func() (*storage.Account, error) { return getRecord(ctx, s, accounts, id) })
}

// AccountByThumbprint implements storage.Accounts.
func (s *Store) AccountByThumbprint(ctx context.Context, thumbprint string) (*storage.Account, error) {
	var a *storage.Account
	err := s.read(ctx, func(tx *bolt.Tx) (err error) {
		seq := tx.Bucket(accountThumbprints).Get([]byte(thumbprint))
		if seq == nil {
			return notFound("account key", thumbprint)
		}
		a, err = accounts.load(tx, seq)
		return err
	})
	return a, err
}

// UpdateAccount implements storage.Accounts. A key rollover moves the
// account's entry in the index of thumbprints.
func (s *Store) UpdateAccount(ctx context.Context, a *storage.Account) error {
	defer s.cached.Invalidate(a.ID)
	return updateRecord(ctx, s, accounts, a.ID, a, func(tx *bolt.Tx, old, rec *storage.Account, seq []byte) error {
		if rec.KeyThumbprint == old.KeyThumbprint {
			return nil
		}
		keys := tx.Bucket(accountThumbprints)
		if keys.Get([]byte(rec.KeyThumbprint)) != nil {
			return taken("account key", rec.KeyThumbprint)
		}
		if err := keys.Delete([]byte(old.KeyThumbprint)); err != nil {
			return fmt.Errorf("boltstore: account key %q: %w", old.KeyThumbprint, err)
		}
		return put(keys, []byte(rec.KeyThumbprint), seq, "account key")
	})
}
