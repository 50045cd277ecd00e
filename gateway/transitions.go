package gateway

import (
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// The state changes of RFC 8555 §7.1.6, one function each. They are pure:
// they change the record they are given (or refuse to) and store nothing;
// the handlers store the result by compare-and-swap. A handler never
// assigns a status itself.

// SetAccountStatus applies the status an account update, or an officer,
// asks for: none, or the current one (clients post back the whole
// account), changes nothing; deactivated deactivates; anything else is
// refused.
func SetAccountStatus(a *storage.Account, requested string) error {
	switch requested {
	case "", a.Status:
	case storage.StatusDeactivated:
		a.Status = storage.StatusDeactivated
	default:
		return malformed("status may only be changed to deactivated")
	}
	return nil
}

// deactivateAuthz deactivates an authorization that is pending or valid
// at now (§7.5.2).
func deactivateAuthz(a *storage.Authorization, now time.Time) error {
	switch st := authzStatus(a, now); st {
	case storage.StatusPending, storage.StatusValid:
		a.Status = storage.StatusDeactivated
		return nil
	default:
		return malformed("a %s authorization cannot be deactivated", st)
	}
}

// challengeProcessing is a copy of a with its challenge at index i
// processing: a validation runs for it.
func challengeProcessing(a *storage.Authorization, i int) *storage.Authorization {
	processing := *a
	processing.Challenges = append([]storage.Challenge(nil), a.Challenges...)
	processing.Challenges[i].Status = storage.StatusProcessing
	return &processing
}

// challengeOutcome applies a validation result to an authorization whose
// challenge at index i was processing: both become valid, or both invalid
// with the problem recorded on the challenge (§7.1.6).
func challengeOutcome(a *storage.Authorization, i int, problem []byte, now time.Time) {
	c := &a.Challenges[i]
	if problem == nil {
		c.Status = storage.StatusValid
		c.Validated = now
		a.Status = storage.StatusValid
		return
	}
	c.Status = storage.StatusInvalid
	c.Error = problem
	a.Status = storage.StatusInvalid
}

// orderProcessing moves a ready order to processing with the CSR it is
// finalized with (§7.4).
func orderProcessing(o *storage.Order, csr []byte, now time.Time) {
	o.Status = storage.StatusProcessing
	o.CSR = csr
	o.UpdatedAt = now
}

// orderIssued makes a processing order valid with the certificate of
// serial; its CSR and the issuer's reference are no longer needed.
func orderIssued(o *storage.Order, serial string, now time.Time) {
	o.Status = storage.StatusValid
	o.CertificateSerial = serial
	o.CSR, o.IssuerRef = nil, ""
	o.UpdatedAt = now
}

// orderFailed makes an order invalid with the problem that ended it: a
// processing one the issuer failed, or a new one newOrder stored but could
// not keep.
func orderFailed(o *storage.Order, problem []byte, now time.Time) {
	o.Status = storage.StatusInvalid
	o.Error = problem
	o.CSR, o.IssuerRef = nil, ""
	o.UpdatedAt = now
}

// CertificateRevoked records a revocation the CA confirmed, asked for by
// a client or an officer.
func CertificateRevoked(c *storage.Certificate, reason int, now time.Time) {
	c.Status = storage.StatusRevoked
	c.RevokedAt = now.UTC()
	c.RevocationReason = reason
}
