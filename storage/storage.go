// Package storage defines the records the ACME gateway keeps and the small
// interfaces that every storage backend implements. It knows nothing of Caddy
// or of HTTP: the gateway maps the typed errors below to RFC 8555 problems.
//
// Every update is a compare-and-swap on the record's Version: the caller reads
// a record, changes it, and writes it back; the write succeeds only when the
// stored Version still equals the one that was read, and then increments it.
// Two racing requests therefore cannot both win a state transition.
//
// Conventions shared by every backend:
//   - Create sets the argument's Version to 1, and a successful update
//     increments it, so the caller's copy stays current; a failed call
//     leaves the argument as it was.
//   - Updating a record that does not exist is ErrNotFound.
//   - ID, AccountID and CreatedAt never change after creation, and neither
//     do an order's or a certificate's Profile and Replaces: a backend may
//     ignore a change to them (postgres's order and certificate updates
//     write none of them back).
//   - Records returned are copies: changing them changes nothing stored.
//   - "Atomically" means a reader never sees one half without the other.
//     Backends without transactions write the referencing record (the
//     order) last, so that a crash leaves at worst unreferenced records.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns, wrapped or not; match them with errors.Is.
var (
	// ErrNotFound means no record has the given key.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict means a compare-and-swap lost (the Version moved) or a
	// unique key (account key thumbprint, certificate serial) already exists.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable means the backend cannot be reached right now; the
	// request may succeed later.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Status values of accounts, orders, authorizations, challenges and
// certificates (RFC 8555 §7.1.6, plus "revoked" for certificates).
const (
	StatusValid       = "valid"
	StatusPending     = "pending"
	StatusReady       = "ready"
	StatusProcessing  = "processing"
	StatusInvalid     = "invalid"
	StatusExpired     = "expired"
	StatusDeactivated = "deactivated"
	StatusRevoked     = "revoked"
)

// Identifier is an ACME identifier: Type "dns" (or "ip"), Value the name.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Account is an ACME account.
type Account struct {
	ID string `json:"id"`
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint of the account key,
	// base64url without padding. Unique among accounts.
	KeyThumbprint string `json:"key_thumbprint"`
	// KeyJWK is the account's public key as a JSON Web Key.
	KeyJWK    []byte    `json:"key_jwk"`
	Contact   []string  `json:"contact,omitempty"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// RegistrationID is the key id of the pre-registration (external
	// account binding) the account was created with; empty when none.
	RegistrationID string `json:"registration_id,omitempty"`
	Version        int64  `json:"version"`
}

// Order is an ACME order.
type Order struct {
	ID          string       `json:"id"`
	AccountID   string       `json:"account_id"`
	Status      string       `json:"status"`
	Identifiers []Identifier `json:"identifiers"`
	// AuthzIDs holds one authorization per identifier, in the same order.
	AuthzIDs  []string  `json:"authz_ids"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Expires   time.Time `json:"expires"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the status last changed; for "processing" it is
	// when processing started.
	UpdatedAt time.Time `json:"updated_at"`
	// CertificateSerial names the issued certificate once Status is valid.
	CertificateSerial string `json:"certificate_serial,omitempty"`
	// IssuerRef is an issuer's handle for a request still pending there
	// (for example an answer that was lost), so that issuance can resume.
	IssuerRef string `json:"issuer_ref,omitempty"`
	// CSR is the DER of the finalize request, kept while processing so that
	// issuance can resume after a restart.
	CSR []byte `json:"csr,omitempty"`
	// Error is the RFC 7807 problem document (JSON) that made it invalid.
	Error []byte `json:"error,omitempty"`
	// Profile is the certificate profile the order was placed under. It
	// never changes after creation.
	Profile string `json:"profile,omitempty"`
	// Replaces is the serial of the certificate this order renews (the
	// newOrder "replaces" field of RFC 9773), empty when it names none. It
	// never changes after creation.
	Replaces string `json:"replaces,omitempty"`
	Version  int64  `json:"version"`
}

// Challenge is one way to prove control of an authorization's identifier.
// It lives inside its Authorization and is updated with it.
type Challenge struct {
	Type      string    `json:"type"`
	Token     string    `json:"token"`
	Status    string    `json:"status"`
	Validated time.Time `json:"validated,omitzero"`
	// Error is the RFC 7807 problem document (JSON) of a failed validation.
	Error []byte `json:"error,omitempty"`
}

// Authorization is an ACME authorization of one identifier for one account.
type Authorization struct {
	ID         string      `json:"id"`
	AccountID  string      `json:"account_id"`
	Identifier Identifier  `json:"identifier"`
	Wildcard   bool        `json:"wildcard,omitempty"`
	Status     string      `json:"status"`
	Expires    time.Time   `json:"expires"`
	Challenges []Challenge `json:"challenges"`
	Version    int64       `json:"version"`
}

// Certificate is a certificate the gateway issued.
type Certificate struct {
	// Serial is the certificate's serial number, lower-case hex without
	// leading zeros. Unique.
	Serial    string    `json:"serial"`
	AccountID string    `json:"account_id"`
	OrderID   string    `json:"order_id"`
	Names     []string  `json:"names"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// ChainPEM is the chain as served to clients, leaf first.
	ChainPEM         []byte    `json:"chain_pem"`
	Status           string    `json:"status"`
	RevokedAt        time.Time `json:"revoked_at,omitzero"`
	RevocationReason int       `json:"revocation_reason,omitempty"`
	IssuedAt         time.Time `json:"issued_at"`
	// Profile is the profile it was issued under. It never changes after
	// creation.
	Profile string `json:"profile,omitempty"`
	// Replaces is the serial of the certificate this one renews, from its
	// order's "replaces", and never changes after creation; ReplacedBy is
	// the serial of the one that renewed it.
	Replaces   string `json:"replaces,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
	Version    int64  `json:"version"`
}

// Accounts stores accounts. Implementations are safe for concurrent use and
// honour ctx cancellation where they block.
type Accounts interface {
	// CreateAccount stores a new account with Version 1. It returns
	// ErrConflict when an account with the same KeyThumbprint exists.
	CreateAccount(ctx context.Context, a *Account) error
	// GetAccount returns ErrNotFound for an unknown id.
	GetAccount(ctx context.Context, id string) (*Account, error)
	// AccountByThumbprint returns ErrNotFound when no account has that key.
	AccountByThumbprint(ctx context.Context, thumbprint string) (*Account, error)
	// UpdateAccount writes a back when its Version is current (then
	// increments it), else ErrConflict. A changed KeyThumbprint (key
	// rollover) that another account already holds is ErrConflict too.
	UpdateAccount(ctx context.Context, a *Account) error
}

// Orders stores orders with the authorizations they create.
type Orders interface {
	// CreateOrder stores o and those of authzs that are new (Version 0),
	// atomically, each with Version 1. Authorizations reused from earlier
	// orders have a non-zero Version and are left as they are.
	CreateOrder(ctx context.Context, o *Order, authzs []*Authorization) error
	// GetOrder returns ErrNotFound for an unknown id.
	GetOrder(ctx context.Context, id string) (*Order, error)
	// UpdateOrder is a compare-and-swap on o.Version, like UpdateAccount.
	UpdateOrder(ctx context.Context, o *Order) error
	// ListOrders returns up to limit (> 0) order ids of an account, oldest
	// CreatedAt first (ties by id), starting after cursor ("" for the
	// start), and the opaque cursor of the next page ("" when there is
	// none). An account without orders has an empty list, not an error.
	ListOrders(ctx context.Context, accountID, cursor string, limit int) (ids []string, next string, err error)
}

// Authorizations stores authorizations and their challenges.
type Authorizations interface {
	// GetAuthz returns ErrNotFound for an unknown id.
	GetAuthz(ctx context.Context, id string) (*Authorization, error)
	// UpdateAuthz is a compare-and-swap on a.Version, like UpdateAccount.
	UpdateAuthz(ctx context.Context, a *Authorization) error
	// ValidAuthz returns an authorization of the account for ident (with the
	// same Wildcard flag) whose Status is valid and that expires after now,
	// or ErrNotFound. When several qualify, any one may be returned.
	ValidAuthz(ctx context.Context, accountID string, ident Identifier, wildcard bool, now time.Time) (*Authorization, error)
}

// Certificates stores issued certificates.
type Certificates interface {
	// StoreCertificate stores c (Version 1) and writes o back, atomically;
	// o is compare-and-swapped on its Version. A serial that exists
	// already, or a lost swap, is ErrConflict and stores neither.
	StoreCertificate(ctx context.Context, c *Certificate, o *Order) error
	// GetCertificate returns ErrNotFound for an unknown serial.
	GetCertificate(ctx context.Context, serial string) (*Certificate, error)
	// UpdateCertificate is a compare-and-swap on c.Version, like UpdateAccount.
	UpdateCertificate(ctx context.Context, c *Certificate) error
}

// Store is what the gateway needs of a backend.
type Store interface {
	Accounts
	Orders
	Authorizations
	Certificates
	Registrations
	Listings
	Audit
	RenewalRules
	Replacements
}

// Expirer deletes what has expired, so that storage stays bounded under a
// steady load of orders that are never finished. Certificates are kept, and
// so are valid orders and valid authorizations: an issued certificate's
// order and the authorizations it lists stay reachable.
type Expirer interface {
	// DeleteExpired deletes up to limit (> 0) orders and authorizations in
	// all whose Expires is before before and whose Status is not valid, and
	// returns how many it deleted; fewer than limit means it found no more.
	// A deleted order leaves its account's list of orders in the same call.
	// Each call is bounded by limit, so a caller deletes a large backlog in
	// batches.
	DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error)
}

// Nonces issues and redeems anti-replay nonces. A backend shared by several
// gateway instances implements it so that a nonce from one instance is
// accepted once by any other; otherwise the gateway keeps nonces in memory.
type Nonces interface {
	// NewNonce returns a fresh nonce, valid until it is redeemed or expires.
	NewNonce(ctx context.Context) (string, error)
	// RedeemNonce returns nil the first time a valid, unexpired nonce is
	// presented, and ErrNotFound when it is unknown, expired or used.
	RedeemNonce(ctx context.Context, nonce string) error
}
