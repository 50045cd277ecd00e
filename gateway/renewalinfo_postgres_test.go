package gateway

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Two Servers on one PostgreSQL answer one window: a rule made through
// one's store moves it at the other at once, and both answer the same
// window, with the configured Retry-After.
func TestRenewalInfo_OnPostgresRuleMadeAtOneServerAnsweredByTheOther(t *testing.T) {
	g, serving := serversOnPostgres(t, Config{RenewalInfoRetryAfter: 3 * time.Second})
	c := g.newClient()
	c.register()
	leaf := c.issueLeaf("shared.example.com")
	id := certIDOf(leaf)

	var before [2]renewalInfoBody
	for i := range before {
		serving.Store(int32(i))
		r, info := g.getRenewalInfo(id)
		if r.status != http.StatusOK || r.header.Get("Retry-After") != strconv.Itoa(3) {
			t.Fatalf("server %d: renewalInfo %d %s, Retry-After %q", i, r.status, r.body, r.header.Get("Retry-After"))
		}
		before[i] = info
	}
	if before[0] != before[1] || before[0].ExplanationURL != "" {
		t.Fatalf("the two servers answer %+v and %+v, want one default window", before[0], before[1])
	}

	now := time.Now()
	rule := &storage.RenewalRule{ID: NewID(),
		RenewalScope: storage.RenewalScope{Kind: storage.RenewalScopeCertificate, Value: leaf.SerialNumber.Text(16)},
		WindowStart:  now.Add(-time.Hour), WindowEnd: now, ExplanationURL: "https://example.com/moved", CreatedAt: now}
	if err := g.pgStores[0].CreateRenewalRule(t.Context(), rule); err != nil {
		t.Fatal(err)
	}
	serving.Store(1)
	r, info := g.getRenewalInfo(id)
	if r.status != http.StatusOK || info.ExplanationURL != rule.ExplanationURL ||
		!info.SuggestedWindow.End.Equal(rule.WindowEnd.UTC().Truncate(time.Second)) {
		t.Fatalf("the other server answers %d %+v after the rule, want the rule's window", r.status, info)
	}

	// A renewal ordered at the other server is recorded for both.
	r = c.newOrderReplacing(id, "shared.example.com")
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder replacing at the other server: %d %s", r.status, r.body)
	}
}
