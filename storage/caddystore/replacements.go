package caddystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func (s *Store) replacementClaimKey(serial string) string {
	return s.prefix + "/replacement_claims/" + serial
}

// ClaimReplacement implements storage.Replacements under the claim's lock.
func (s *Store) ClaimReplacement(ctx context.Context, serial, orderID, prevOrderID string) error {
	if !safe(serial) {
		return unsafeName("serial", serial)
	}
	key := s.replacementClaimKey(serial)
	return s.locked(ctx, key, func() error {
		cur, err := s.loadString(ctx, key)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if cur != prevOrderID {
			return fmt.Errorf("caddystore: replacement of %q: %w", serial, storage.ErrConflict)
		}
		return s.putString(ctx, key, orderID)
	})
}

// ReplacementClaim implements storage.Replacements.
func (s *Store) ReplacementClaim(ctx context.Context, serial string) (string, error) {
	if !safe(serial) {
		return "", fmt.Errorf("caddystore: replacement of %q: %w", serial, storage.ErrNotFound)
	}
	return s.loadString(ctx, s.replacementClaimKey(serial))
}
