package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// replacementClaims maps serials to the orders claiming to replace them.
type replacementClaims struct {
	mu     sync.Mutex
	orders map[string]string
}

// ClaimReplacement implements storage.Replacements.
func (s *Store) ClaimReplacement(_ context.Context, serial, orderID, prevOrderID string) error {
	c := &s.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.orders[serial] != prevOrderID {
		return fmt.Errorf("memory: replacement of %q: %w", serial, storage.ErrConflict)
	}
	c.orders[serial] = orderID
	return nil
}

// ReplacementClaim implements storage.Replacements.
func (s *Store) ReplacementClaim(_ context.Context, serial string) (string, error) {
	c := &s.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.orders[serial]
	if !ok {
		return "", notFound("replacement claim", serial)
	}
	return id, nil
}
