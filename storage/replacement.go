package storage

import "context"

// Replacements records which order claims to replace a certificate (the
// newOrder "replaces" of RFC 9773), so that of two orders naming one
// certificate only one is accepted while the first is alive. A claim
// names an order that may since have failed, expired or been deleted: the
// caller judges it, and takes it over by compare-and-swap.
// Implementations are safe for concurrent use.
type Replacements interface {
	// ClaimReplacement records that order orderID replaces the
	// certificate serial, when the stored claim is prevOrderID ("" for
	// none); otherwise it is ErrConflict and nothing changes.
	ClaimReplacement(ctx context.Context, serial, orderID, prevOrderID string) error
	// ReplacementClaim returns the id of the order that claims serial, or
	// ErrNotFound.
	ReplacementClaim(ctx context.Context, serial string) (orderID string, err error)
}
