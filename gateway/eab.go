package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// macAlgorithms are the algorithms an external account binding may use.
var macAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// macKeyBits is the shortest key each MAC algorithm takes (RFC 7518 §3.2).
var macKeyBits = map[jose.SignatureAlgorithm]int{jose.HS256: 256, jose.HS384: 384, jose.HS512: 512}

// checkBinding verifies an external account binding (RFC 8555 §7.3.4): a
// JWS by the registration's MAC key, for this newAccount URL, over the
// account key. It returns the registration, ready to be bound.
func (h *Server) checkBinding(ctx context.Context, raw json.RawMessage, url string, accountKey *jose.JSONWebKey) (*storage.Registration, error) {
	var f flattened
	if err := json.Unmarshal(raw, &f); err != nil || f.Protected == "" || f.Payload == nil || f.Signature == "" || !absentJSON(f.Signatures) || !absentJSON(f.Header) {
		return nil, malformed("externalAccountBinding must be a flattened JWS")
	}
	var hdr protectedHeader
	if err := decodeProtected(f.Protected, &hdr); err != nil {
		return nil, err
	}
	switch {
	case !slices.Contains(macAlgorithms, jose.SignatureAlgorithm(hdr.Alg)):
		return nil, malformed("externalAccountBinding must use HS256, HS384 or HS512, not %q", hdr.Alg)
	case hdr.KID == "":
		return nil, malformed("externalAccountBinding has no kid")
	case hdr.Nonce != "":
		return nil, malformed("externalAccountBinding must not carry a nonce")
	case hdr.URL != url:
		return nil, malformed("externalAccountBinding url must be the newAccount URL")
	}
	jws, err := jose.ParseSignedJSON(string(raw), macAlgorithms)
	if err != nil {
		return nil, malformed("externalAccountBinding cannot be parsed")
	}
	reg, err := h.store.GetRegistration(ctx, hdr.KID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, unauthorized("external account binding key id is unknown")
	}
	if err != nil {
		return nil, err
	}
	if bits := macKeyBits[jose.SignatureAlgorithm(hdr.Alg)]; len(reg.HMACKey)*8 < bits {
		return nil, malformed("externalAccountBinding uses %s, which needs a MAC key of at least %d bits (RFC 7518); this key has %d: use HS256", hdr.Alg, bits, len(reg.HMACKey)*8)
	}
	payload, err := jws.Verify(reg.HMACKey)
	if err != nil {
		return nil, unauthorized("external account binding MAC does not verify")
	}
	var bound jose.JSONWebKey
	if bound.UnmarshalJSON(payload) != nil {
		return nil, malformed("externalAccountBinding payload is not a JWK")
	}
	a, errA := thumbprint(&bound)
	b, errB := thumbprint(accountKey)
	if errA != nil || errB != nil || a != b {
		return nil, unauthorized("externalAccountBinding is for another account key")
	}
	if err := h.registrationUsable(reg); err != nil {
		return nil, err
	}
	if reg.AccountID != "" {
		return nil, unauthorized("external account binding key id is already used by another account")
	}
	return reg, nil
}

// Why a registration stops its account from ordering or changing
// anything, besides its status when that is not active (disabled).
const (
	RegistrationExpired = "expired"
	RegistrationRemoved = "removed"
	// RegistrationMissing: the account has none, and the server now
	// requires one (it was made while registration was open).
	RegistrationMissing = "missing"
)

// RegistrationBlock tells why reg no longer lets an account order or
// change anything at now: its status when not active, RegistrationExpired,
// or "" when it still does. Reading and revoking are never blocked.
func RegistrationBlock(reg *storage.Registration, now time.Time) string {
	if reg.Status != storage.RegistrationActive {
		return reg.Status
	}
	if !reg.Expires.IsZero() && !now.Before(reg.Expires) {
		return RegistrationExpired
	}
	return ""
}

// AccountRegistration returns the registration acct was created with
// (nil for an account without one) and RegistrationBlock of it, or
// RegistrationRemoved when it was deleted. Under mode
// RegistrationPreregistered an account without one is RegistrationMissing:
// switching modes must not leave accounts made while open able to order.
func AccountRegistration(ctx context.Context, regs storage.Registrations, acct *storage.Account, mode string, now time.Time) (*storage.Registration, string, error) {
	if acct.RegistrationID == "" {
		if mode == RegistrationPreregistered {
			return nil, RegistrationMissing, nil
		}
		return nil, "", nil
	}
	reg, err := regs.GetRegistration(ctx, acct.RegistrationID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, RegistrationRemoved, nil
	}
	if err != nil {
		return nil, "", err
	}
	if reg.AccountID != acct.ID {
		// Deleted, and its key id since given to someone else.
		return nil, RegistrationRemoved, nil
	}
	return reg, RegistrationBlock(reg, now), nil
}

// registrationUsable refuses a disabled or expired registration.
func (h *Server) registrationUsable(reg *storage.Registration) error {
	return blocked(RegistrationBlock(reg, h.now()))
}

// blocked is the problem of a RegistrationBlock, nil for "".
func blocked(block string) error {
	switch block {
	case "":
		return nil
	case RegistrationRemoved:
		return unauthorized("the account's registration was removed")
	case RegistrationExpired:
		return unauthorized("the account's registration has expired")
	case RegistrationMissing:
		return unauthorized("the account has no registration, which this server now requires; ask a registration officer for a key id and make a new account with it")
	}
	return unauthorized("the account's registration is %s", block)
}

// accountRegistration returns the registration an account was created
// with, refusing when it was deleted, disabled or has expired: such an
// account may read and revoke, but change nothing. Nil for accounts
// without one, refused the same way when the server is preregistered.
func (h *Server) accountRegistration(ctx context.Context, acct *storage.Account) (*storage.Registration, error) {
	reg, block, err := AccountRegistration(ctx, h.store, acct, h.cfg.RegistrationMode, h.now())
	if err != nil {
		return nil, err
	}
	return reg, blocked(block)
}

// policyFor is the name policy for an account: the server's, and its
// registration's allowed domains.
func (h *Server) policyFor(reg *storage.Registration) namePolicy {
	p := namePolicy{allow: h.allow, deny: h.deny, allowWildcards: !h.cfg.NoWildcardNames}
	if reg != nil {
		p.registration = reg.AllowedDomains
	}
	return p
}

// externalAccountRequired is the problem of a newAccount without a binding
// in preregistered mode.
func externalAccountRequired() *Problem {
	return problem(ProblemExternalAccountRequired, "this server requires an external account binding; ask a registration officer for a key id and MAC key")
}
