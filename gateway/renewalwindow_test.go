package gateway

import (
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func testCertificate(serial string, notBefore time.Time, life time.Duration) *storage.Certificate {
	return &storage.Certificate{Serial: serial, AccountID: "acct", NotBefore: notBefore, NotAfter: notBefore.Add(life),
		IssuedAt: notBefore, Status: storage.StatusValid}
}

func TestDefaultWindow_InLastThirdAndStable(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{90 * 24 * time.Hour, 6 * 24 * time.Hour, time.Hour, 30 * time.Second} {
		starts := map[time.Time]bool{}
		for _, serial := range []string{"1", "2", "abcdef", "7f3e9a01", "deadbeef"} {
			c := testCertificate(serial, nb, life)
			w := defaultWindow(c)
			if again := defaultWindow(testCertificate(serial, nb, life)); again != w {
				t.Fatalf("life %s serial %s: window %v, then %v", life, serial, w, again)
			}
			lastThird := c.NotAfter.Add(-life / 3).Truncate(time.Second)
			if w.Start.Before(lastThird) || w.End.After(c.NotAfter) || w.End.Sub(w.Start) < minWindow {
				t.Errorf("life %s serial %s: window %s to %s, want at least %s long within %s to %s",
					life, serial, w.Start, w.End, minWindow, lastThird, c.NotAfter)
			}
			starts[w.Start] = true
		}
		if life >= time.Hour && len(starts) < 3 {
			t.Errorf("life %s: windows of five serials start at only %d times; want them spread", life, len(starts))
		}
	}
}

func TestRevokedWindow_EndedAtRevocation(t *testing.T) {
	c := testCertificate("1", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 90*24*time.Hour)
	c.Status, c.RevokedAt = storage.StatusRevoked, c.NotBefore.Add(24*time.Hour)
	if w := revokedWindow(c); !w.End.Equal(c.RevokedAt) || !w.Start.Before(w.End) {
		t.Fatalf("revoked window = %v, want one ending at %s", w, c.RevokedAt)
	}
}

func TestRuleWindow_OnlyCertificatesIssuedBeforeTheRule(t *testing.T) {
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := testCertificate("1", issued, 90*24*time.Hour)
	own := defaultWindow(c)
	rule := func(id string, made time.Time) *storage.RenewalRule {
		return &storage.RenewalRule{ID: id, WindowStart: made.Add(-time.Hour), WindowEnd: made, CreatedAt: made,
			ExplanationURL: "https://example.com/" + id}
	}
	before := rule("before", issued.Add(-time.Minute))
	same := rule("same", issued)
	after := rule("after", issued.Add(time.Hour))
	later := rule("later", issued.Add(2*time.Hour))

	tests := []struct {
		name  string
		rules []*storage.RenewalRule
		want  renewalWindow
	}{
		{"no rules", nil, own},
		{"rule made before issuance", []*storage.RenewalRule{before}, own},
		{"rule made at issuance", []*storage.RenewalRule{same}, own},
		{"rule made after issuance", []*storage.RenewalRule{before, after},
			renewalWindow{Start: after.WindowStart, End: after.WindowEnd, ExplanationURL: after.ExplanationURL}},
		{"latest rule wins", []*storage.RenewalRule{later, after},
			renewalWindow{Start: later.WindowStart, End: later.WindowEnd, ExplanationURL: later.ExplanationURL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleWindow(c, tc.rules); got != tc.want {
				t.Fatalf("ruleWindow = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A rule's window is held within the life of each certificate it moves: one
// that starts when the certificate has expired leaves it its own window,
// one that ends after that ends when the certificate expires.
func TestRuleWindow_HeldWithinTheCertificatesLife(t *testing.T) {
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := testCertificate("1", issued, 90*24*time.Hour)
	own := defaultWindow(c)
	made := issued.Add(time.Hour)
	tests := []struct {
		name       string
		start, end time.Time
		want       renewalWindow
	}{
		{"within its life", c.NotAfter.Add(-48 * time.Hour), c.NotAfter.Add(-24 * time.Hour),
			renewalWindow{Start: c.NotAfter.Add(-48 * time.Hour), End: c.NotAfter.Add(-24 * time.Hour), ExplanationURL: "https://example.com/r"}},
		{"ending after expiry", c.NotAfter.Add(-24 * time.Hour), c.NotAfter.AddDate(1, 0, 0),
			renewalWindow{Start: c.NotAfter.Add(-24 * time.Hour), End: c.NotAfter, ExplanationURL: "https://example.com/r"}},
		{"starting at expiry", c.NotAfter, c.NotAfter.Add(24 * time.Hour), own},
		{"starting after expiry", c.NotAfter.AddDate(1, 0, 0), c.NotAfter.AddDate(1, 0, 1), own},
		{"too short once cut", c.NotAfter.Add(-time.Second), c.NotAfter.Add(time.Hour), own},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &storage.RenewalRule{ID: "r", WindowStart: tc.start, WindowEnd: tc.end, CreatedAt: made,
				ExplanationURL: "https://example.com/r"}
			if got := ruleWindow(c, []*storage.RenewalRule{r}); got != tc.want {
				t.Fatalf("ruleWindow = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A revoked certificate's window ended at its revocation, whatever rule
// moved it before or after.
func TestRuleWindow_RevokedEndsAtRevocation(t *testing.T) {
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := testCertificate("1", issued, 90*24*time.Hour)
	future := &storage.RenewalRule{ID: "future", WindowStart: issued.Add(60 * 24 * time.Hour),
		WindowEnd: issued.Add(61 * 24 * time.Hour), CreatedAt: issued.Add(time.Hour)}
	c.Status, c.RevokedAt = storage.StatusRevoked, issued.Add(24*time.Hour)
	if got, want := ruleWindow(c, []*storage.RenewalRule{future}), revokedWindow(c); got != want {
		t.Fatalf("window of a revoked certificate under a rule = %+v, want the revoked window %+v", got, want)
	}
}

func TestRenewalScopes(t *testing.T) {
	c := testCertificate("abc", time.Now(), time.Hour)
	want := []storage.RenewalScope{
		{Kind: storage.RenewalScopeCertificate, Value: "abc"},
		{Kind: storage.RenewalScopeAccount, Value: "acct"},
		{Kind: storage.RenewalScopeIssuer},
	}
	if got := renewalScopes(c, ""); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("renewalScopes without registration = %v, want %v", got, want)
	}
	reg := storage.RenewalScope{Kind: storage.RenewalScopeRegistration, Value: "kid-1"}
	if got := renewalScopes(c, "kid-1"); len(got) != 4 || got[3] != reg {
		t.Fatalf("renewalScopes with registration = %v, want %v and %v", got, want, reg)
	}
}
