package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// ClaimReplacement implements storage.Replacements in one transaction.
func (s *Store) ClaimReplacement(ctx context.Context, serial, orderID, prevOrderID string) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(replacementClaims)
		if !bytes.Equal(b.Get([]byte(serial)), []byte(prevOrderID)) {
			return fmt.Errorf("boltstore: replacement of %q: %w", serial, storage.ErrConflict)
		}
		return put(b, []byte(serial), []byte(orderID), "replacement claim")
	})
}

// ReplacementClaim implements storage.Replacements.
func (s *Store) ReplacementClaim(ctx context.Context, serial string) (string, error) {
	var id string
	err := s.read(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(replacementClaims).Get([]byte(serial))
		if v == nil {
			return notFound("replacement claim", serial)
		}
		id = string(v)
		return nil
	})
	return id, err
}
