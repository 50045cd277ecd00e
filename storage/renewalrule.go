package storage

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// Renewal rule scopes: the certificates a rule moves the renewal window of.
const (
	// RenewalScopeCertificate: the certificate whose Serial is the Value.
	RenewalScopeCertificate = "certificate"
	// RenewalScopeAccount: the certificates of the account whose ID is the Value.
	RenewalScopeAccount = "account"
	// RenewalScopeRegistration: the certificates of the account bound to
	// the registration whose KeyID is the Value.
	RenewalScopeRegistration = "registration"
	// RenewalScopeIssuer: every certificate of the gateway; the Value is "".
	RenewalScopeIssuer = "issuer"
)

// RenewalScope names the certificates of a renewal rule: a Kind, one of the
// RenewalScope constants, and the Value it is keyed by.
type RenewalScope struct {
	Kind  string `json:"scope"`
	Value string `json:"value,omitempty"`
}

// RenewalRule is an officer's decision that the certificates of a scope
// that were issued before CreatedAt should be renewed in another window
// than their own (RFC 9773 renewal information). Rules are never changed:
// a later rule supersedes an earlier one.
type RenewalRule struct {
	ID string `json:"id"`
	RenewalScope
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// ExplanationURL, when set, is a page telling subscribers why.
	ExplanationURL string    `json:"explanation_url,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by,omitempty"`
}

// RenewalRules stores renewal rules. Implementations are safe for
// concurrent use; every instance sharing a backend reads the same rules.
type RenewalRules interface {
	// CreateRenewalRule stores r (its ID set by the caller, of the
	// alphabet of record ids); an ID stored before is ErrConflict.
	CreateRenewalRule(ctx context.Context, r *RenewalRule) error
	// RenewalRulesFor returns the rules whose scope equals one of scopes,
	// in any order; none is an empty list, not an error.
	RenewalRulesFor(ctx context.Context, scopes []RenewalScope) ([]*RenewalRule, error)
}

// Digest names the scope in a fixed length, for backends that key a
// scope's rules by it: its value may be empty or hold any character.
func (sc RenewalScope) Digest() [16]byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s", sc.Kind, sc.Value))
	return [16]byte(h[:16])
}

// DistinctScopes is scopes without repeats, for backends that look each
// one up, so that no rule is returned twice.
func DistinctScopes(scopes []RenewalScope) []RenewalScope {
	seen := make(map[RenewalScope]bool, len(scopes))
	out := make([]RenewalScope, 0, len(scopes))
	for _, sc := range scopes {
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out
}
