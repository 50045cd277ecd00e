package storage

import (
	"context"
	"time"
)

// Registration status values.
const (
	RegistrationActive   = "active"
	RegistrationDisabled = "disabled"
)

// Registration is a pre-registration: a key shared with a client
// beforehand, with which it may create one ACME account through external
// account binding (RFC 8555 §7.3.4).
type Registration struct {
	// KeyID is the EAB key identifier the client sends as "kid". Unique.
	KeyID string `json:"key_id"`
	// HMACKey is the shared MAC key, kept so that bindings can be verified.
	HMACKey     []byte `json:"hmac_key"`
	Description string `json:"description,omitempty"`
	// AllowedDomains limits the names the account may order: a name is
	// allowed when it equals an entry or lies below one. Empty: all.
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// Emails are the addresses an officer vouches for: a gateway that puts
	// the account's contact e-mail into certificates does so only when it
	// is one of these.
	Emails []string `json:"emails,omitempty"`
	// Expires, when set, ends the registration's use.
	Expires time.Time `json:"expires,omitzero"`
	Status  string    `json:"status"`
	// AccountID is the account bound to the registration; empty until a
	// client uses it.
	AccountID string `json:"account_id,omitempty"`
	// Procedure, when set, overrides the issuer's configured procedure for
	// the account's certificates.
	Procedure string `json:"procedure,omitempty"`
	// Profiles, when set, are the only certificate profiles the account
	// may order under.
	Profiles  []string  `json:"profiles,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	Version   int64     `json:"version"`
}

// ValidKeyID reports whether id may be a registration's KeyID: 1 to 64
// characters of [A-Za-z0-9_-], so that every backend can use it as a key
// component. Officers choose key ids, so they are checked, not trusted.
func ValidKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Registrations stores pre-registrations. Implementations are safe for
// concurrent use. A KeyID that is not ValidKeyID is refused by
// CreateRegistration with an error that is neither ErrConflict nor
// ErrNotFound, and is ErrNotFound everywhere else.
type Registrations interface {
	// CreateRegistration stores r with Version 1; ErrConflict when the
	// KeyID exists.
	CreateRegistration(ctx context.Context, r *Registration) error
	// GetRegistration returns ErrNotFound for an unknown key id.
	GetRegistration(ctx context.Context, keyID string) (*Registration, error)
	// UpdateRegistration is a compare-and-swap on r.Version, writing r as
	// given (KeyID and CreatedAt never change; AccountID is the caller's
	// to keep or clear).
	UpdateRegistration(ctx context.Context, r *Registration) error
	// DeleteRegistration removes it; ErrNotFound when it does not exist.
	// The account bound to it, if any, stays.
	DeleteRegistration(ctx context.Context, keyID string) error
	// ListRegistrations pages through registrations ordered by KeyID,
	// like ListOrders.
	ListRegistrations(ctx context.Context, cursor string, limit int) (regs []*Registration, next string, err error)
	// BindAccount creates a (as CreateAccount does, with a.RegistrationID
	// set to r.KeyID) and writes r back with r.AccountID = a.ID
	// (compare-and-swap on r.Version), atomically: of two keys racing for
	// one registration, exactly one gets an account. A registration whose
	// stored AccountID is already set is ErrConflict, as are a stale
	// r.Version and a taken key thumbprint; then nothing is stored. It does
	// not check Status or Expires: that is the caller's policy.
	BindAccount(ctx context.Context, a *Account, r *Registration) error
}

// AccountFilter selects accounts for officers; zero fields match all.
type AccountFilter struct {
	RegistrationID string
	// Contact matches accounts holding this exact contact URL.
	Contact string
	Status  string
}

// CertificateFilter selects certificates for officers; zero fields match all.
type CertificateFilter struct {
	AccountID string
	// Name matches certificates holding this exact DNS name.
	Name   string
	Serial string
	Status string
}

// Listings serve registration officers. Paging is as in ListOrders, in
// creation order (accounts by CreatedAt, certificates by IssuedAt, ties by
// id or serial); a page holds only matching records, and next is "" when no
// further record matches. Backends may scan every record to filter them.
type Listings interface {
	ListAccounts(ctx context.Context, f AccountFilter, cursor string, limit int) (accts []*Account, next string, err error)
	ListCertificates(ctx context.Context, f CertificateFilter, cursor string, limit int) (certs []*Certificate, next string, err error)
}

// AuditEntry records one change made by an officer.
type AuditEntry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	// Target names what changed: a key id, account id or serial.
	Target string `json:"target"`
	// Detail is JSON describing the change; it never holds secrets.
	Detail []byte `json:"detail,omitempty"`
}

// Audit is an append-only trail of officers' changes.
type Audit interface {
	// AppendAudit stores e (its ID set by the caller, unique, of the
	// alphabet of record ids: [A-Za-z0-9_-]); an ID stored before is
	// ErrConflict.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit pages through entries oldest first (by Time, ties by ID),
	// like ListOrders.
	ListAudit(ctx context.Context, cursor string, limit int) (entries []*AuditEntry, next string, err error)
}
