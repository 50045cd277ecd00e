package gateway

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalWindow is a suggested renewal window (RFC 9773 §4.2), with the
// page that explains it when an officer moved it.
type renewalWindow struct {
	Start, End     time.Time
	ExplanationURL string
}

// minWindow is the shortest window handed out: clients pick a time
// strictly inside it in whole seconds.
const minWindow = 2 * time.Second

// defaultWindow is a certificate's own window, as Let's Encrypt suggests
// it: in the last third of its life. It starts between 2/3 and 5/6 of the
// lifetime, by a jitter derived from the serial alone, so that every
// instance and every request answer the same window and renewals of
// certificates issued together spread out; it lasts 1/12 of the lifetime.
func defaultWindow(c *storage.Certificate) renewalWindow {
	life := c.NotAfter.Sub(c.NotBefore)
	start := c.NotBefore.Add(life * 2 / 3)
	if spread := life / 6; spread > 0 {
		sum := sha256.Sum256([]byte(c.Serial))
		start = start.Add(time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(spread)))
	}
	return boundedWindow(start, start.Add(life/12))
}

// revokedWindow is the window of a revoked certificate: it ended when the
// certificate was revoked, so that its subscriber replaces it at once.
func revokedWindow(c *storage.Certificate) renewalWindow {
	return boundedWindow(c.RevokedAt.Add(-time.Hour), c.RevokedAt)
}

// boundedWindow is start to end in whole seconds, at least minWindow long.
func boundedWindow(start, end time.Time) renewalWindow {
	start, end = start.UTC().Truncate(time.Second), end.UTC().Truncate(time.Second)
	if end.Sub(start) < minWindow {
		end = start.Add(minWindow)
	}
	return renewalWindow{Start: start, End: end}
}

// ruleWindow is a certificate's suggested window under officers' rules.
// A revoked certificate's window ended when it was revoked, whatever rule
// moved it. Otherwise, of the rules made after the certificate was issued,
// the latest wins (so that a rule can be corrected by another); a
// certificate issued after a rule, such as the one that renewed a
// certificate it moved, keeps its own window. A rule's window is held
// within the certificate's life (inLife), so that no client is told to
// wait past expiry.
func ruleWindow(c *storage.Certificate, rules []*storage.RenewalRule) renewalWindow {
	if c.Status == storage.StatusRevoked {
		return revokedWindow(c)
	}
	var latest *storage.RenewalRule
	for _, r := range rules {
		if !r.CreatedAt.After(c.IssuedAt) {
			continue
		}
		if latest == nil || cmp.Or(r.CreatedAt.Compare(latest.CreatedAt), cmp.Compare(r.ID, latest.ID)) > 0 {
			latest = r
		}
	}
	if latest == nil {
		return defaultWindow(c)
	}
	w, ok := inLife(latest.WindowStart, latest.WindowEnd, c)
	if !ok {
		return defaultWindow(c)
	}
	w.ExplanationURL = latest.ExplanationURL
	return w
}

// inLife is the window start to end cut to end when c expires; not ok
// when less than minWindow of it is left: a rule, made for many
// certificates, may name a window after some of them expire.
func inLife(start, end time.Time, c *storage.Certificate) (renewalWindow, bool) {
	if end.After(c.NotAfter) {
		end = c.NotAfter
	}
	if end.Sub(start) < minWindow {
		return renewalWindow{}, false
	}
	return boundedWindow(start, end), true
}

// renewalScopes are the scopes of rules that may apply to a certificate of
// an account bound to registration kid ("" when none).
func renewalScopes(c *storage.Certificate, kid string) []storage.RenewalScope {
	scopes := []storage.RenewalScope{
		{Kind: storage.RenewalScopeCertificate, Value: c.Serial},
		{Kind: storage.RenewalScopeAccount, Value: c.AccountID},
		{Kind: storage.RenewalScopeIssuer},
	}
	if kid != "" {
		scopes = append(scopes, storage.RenewalScope{Kind: storage.RenewalScopeRegistration, Value: kid})
	}
	return scopes
}
