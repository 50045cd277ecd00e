package caddyacmegw

import (
	"context"
	"net/http"
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
