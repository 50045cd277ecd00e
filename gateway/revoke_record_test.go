package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// flakyUpdateStore fails UpdateCertificate with ErrUnavailable the first
// failures times (every time when failures is negative); with commit set,
// each failing call writes first, as a backend whose answer is lost.
type flakyUpdateStore struct {
	storage.Store
	mu       sync.Mutex
	failures int
	commit   bool
}

func (s *flakyUpdateStore) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	s.mu.Lock()
	fail := s.failures != 0
	if s.failures > 0 {
		s.failures--
	}
	s.mu.Unlock()
	if !fail {
		return s.Store.UpdateCertificate(ctx, c)
	}
	if s.commit {
		if err := s.Store.UpdateCertificate(ctx, c); err != nil {
			return err
		}
	}
	return fmt.Errorf("test: %w", storage.ErrUnavailable)
}

// A revocation the issuer made is recorded through a store failing twice,
// and through one whose first write committed but answered a failure.
func TestRevoke_RecordIsRetriedThroughAFailingStore(t *testing.T) {
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			leaf := c.issueLeaf("revoke.example.com")
			g.h.store = &flakyUpdateStore{Store: g.store, failures: 2, commit: commit}

			if r := c.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf.Raw), "reason": 4}); r.status != http.StatusOK {
				t.Fatalf("revocation through a failing store: %d %s", r.status, r.body)
			}
			stored := g.storedCertificate(leaf)
			if stored.Status != storage.StatusRevoked || stored.RevocationReason != 4 {
				t.Fatalf("stored after revocation: %s reason %d", stored.Status, stored.RevocationReason)
			}
			if _, revoked := g.issuer.counts(); revoked != 1 {
				t.Fatalf("issuer revoked %d times, want once", revoked)
			}
		})
	}
}

// When storage never takes the record, the caller learns that the issuer
// revoked and the record failed, apart from any refusal.
func TestRevoke_RecordNeverTakenIsNamed(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	leaf := c.issueLeaf("lost.example.com")
	cert := g.storedCertificate(leaf)
	g.h.store = &flakyUpdateStore{Store: g.store, failures: -1}

	_, err := g.h.RevokeCertificate(context.Background(), cert, 1)
	var notRecorded *RevocationNotRecordedError
	if !errors.As(err, &notRecorded) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("RevokeCertificate with storage down: %v", err)
	}
	if _, revoked := g.issuer.counts(); revoked != 1 {
		t.Fatalf("issuer revoked %d times, want once", revoked)
	}
	if p := asProblem(err); p.Status != http.StatusServiceUnavailable || p.Type != problemNS+"serverInternal" {
		t.Fatalf("ACME clients would see %d %s", p.Status, p.Type)
	}
	if stored := g.storedCertificate(leaf); stored.Status != storage.StatusValid {
		t.Fatalf("stored: %s", stored.Status)
	}
}
