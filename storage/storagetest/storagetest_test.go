package storagetest_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
	"github.com/caddyacmegw/caddyacmegw/storage/storagetest"
)

// nonceStore adds storage.Nonces to the memory store, so that the suite's
// nonce checks run against something.
type nonceStore struct {
	*memory.Store
	mu     sync.Mutex
	issued map[string]bool
}

func (s *nonceStore) NewNonce(context.Context) (string, error) {
	n := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[n] = true
	return n, nil
}

func (s *nonceStore) RedeemNonce(_ context.Context, n string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.issued[n] {
		return storage.ErrNotFound
	}
	delete(s.issued, n)
	return nil
}

func TestRun_WithNonces(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store {
		return &nonceStore{Store: memory.New(), issued: make(map[string]bool)}
	})
}
