package caddyacmegw

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

// A validation that ends within challengeWait is answered at once and
// stored in one write: the challenge goes from pending to valid without a
// stored processing step.
func TestChallenge_FastValidationAnswersOutcomeAndWritesOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       bool
		wantStatus string
	}{
		{"valid", false, storage.StatusValid},
		{"invalid", true, storage.StatusInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			if tc.fail {
				g.valid.failWith(validate.KindUnauthorized)
			}
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("fast.example.com")
			authzURL := o.Authorizations[0]
			before, err := g.store.GetAuthz(context.Background(), orderID(authzURL))
			if err != nil {
				t.Fatal(err)
			}

			var ch challengeBody
			r := c.post(challengeOfType(t, c.readAuthz(authzURL), challengeDNS01).URL, map[string]any{})
			r.decode(t, &ch)
			if r.status != http.StatusOK || ch.Status != tc.wantStatus {
				t.Fatalf("challenge answered %d %s, want %s", r.status, r.body, tc.wantStatus)
			}
			if r.header.Get("Retry-After") != "" {
				t.Errorf("a decided challenge came with Retry-After %q", r.header.Get("Retry-After"))
			}
			after, err := g.store.GetAuthz(context.Background(), before.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.Status != tc.wantStatus || after.Version != before.Version+1 {
				t.Fatalf("stored authorization is %s at version %d, want %s at %d (one write)",
					after.Status, after.Version, tc.wantStatus, before.Version+1)
			}
		})
	}
}

// failingAuthzStore fails the first failures authorization updates.
type failingAuthzStore struct {
	storage.Store
	mu       sync.Mutex
	failures int
}

func (s *failingAuthzStore) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	s.mu.Lock()
	fail := s.failures > 0
	s.failures--
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("test store down: %w", storage.ErrUnavailable)
	}
	return s.Store.UpdateAuthz(ctx, a)
}

// A quick validation whose outcome cannot be stored leaves the challenge
// processing, not pending: clients post a challenge once and then poll,
// and a poll queues a processing challenge again.
func TestChallenge_OutcomeNotStoredIsValidatedAgainOnPoll(t *testing.T) {
	g := newGateway(t)
	g.h.store = &failingAuthzStore{Store: g.store, failures: 1}
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("lost.example.com")
	authzURL := o.Authorizations[0]

	var ch challengeBody
	r := c.post(challengeOfType(t, c.readAuthz(authzURL), challengeDNS01).URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusProcessing {
		t.Fatalf("challenge whose outcome was not stored answered %d %s, want processing", r.status, r.body)
	}
	c.waitAuthz(authzURL, storage.StatusValid)
}
