package caddystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// GetAuthz implements storage.Authorizations.
func (s *Store) GetAuthz(ctx context.Context, id string) (*storage.Authorization, error) {
	return getRecord(ctx, s, authzs, id)
}

// UpdateAuthz implements storage.Authorizations. It keeps the index of valid
// authorizations: an entry is written before the authorization turns valid
// and deleted after it stops being valid, so the index never misses one.
func (s *Store) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	return updateRecord(ctx, s, authzs, a, func(old *storage.Authorization, write func() error) error {
		oldEntry := s.validAuthzDir(old.AccountID, old.Identifier, old.Wildcard) + "/" + a.ID
		newEntry := s.validAuthzDir(a.AccountID, a.Identifier, a.Wildcard) + "/" + a.ID
		wasValid, isValid := old.Status == storage.StatusValid, a.Status == storage.StatusValid
		if isValid && (!wasValid || oldEntry != newEntry) {
			if !safe(a.AccountID) {
				return unsafeName("account id", a.AccountID)
			}
			if err := s.putString(ctx, newEntry, a.ID); err != nil {
				return err
			}
		}
		if err := write(); err != nil {
			return err
		}
		if wasValid && (!isValid || oldEntry != newEntry) {
			// The update is done; an entry that cannot be deleted is
			// checked against the authorization and ignored.
			_ = s.storage.Delete(ctx, oldEntry)
		}
		return nil
	})
}

// ValidAuthz implements storage.Authorizations.
func (s *Store) ValidAuthz(ctx context.Context, accountID string, ident storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	notFound := fmt.Errorf("caddystore: valid authz: %w", storage.ErrNotFound)
	if !safe(accountID) {
		return nil, notFound
	}
	ids, err := s.list(ctx, s.validAuthzDir(accountID, ident, wildcard))
	if err != nil {
		return nil, err
	}
	// The index is a hint: check each authorization it names.
	for _, id := range ids {
		a, err := s.GetAuthz(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if a.Status == storage.StatusValid && a.Expires.After(now) && a.AccountID == accountID &&
			a.Identifier == ident && a.Wildcard == wildcard {
			return a, nil
		}
	}
	return nil, notFound
}
