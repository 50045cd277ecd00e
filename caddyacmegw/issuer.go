package caddyacmegw

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"time"
)

// Issuer signs certificates for finalized orders. Modules in the
// acme_gateway.issuers namespace implement it. Implementations are safe for
// concurrent use and honour ctx.
type Issuer interface {
	// Issue returns the certificate chain, leaf first, for req. It returns
	// a *PendingError when the CA will answer later: with a Ref (an
	// approval step) only if the issuer is also a Resumer; without one to
	// have Issue called again from the stored CSR later (a transient
	// outage, when retrying cannot issue twice). It returns an
	// *IssueError when the CA refused the request for a reason the client
	// should see.
	Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error)
	// Revoke revokes a certificate this issuer signed. A nil error means
	// the CA confirmed it.
	Revoke(ctx context.Context, cert *x509.Certificate, reason int) error
	// MaxLifetime is the longest validity a certificate may have; orders
	// asking for more are refused.
	MaxLifetime() time.Duration
}

// Resumer is an Issuer that can return to a request it answered with a
// *PendingError, using the reference it gave.
type Resumer interface {
	// Resume returns the chain once the CA issued it, a *PendingError
	// while it still waits, or another error when it failed.
	Resume(ctx context.Context, ref string) ([]*x509.Certificate, error)
}

// recordlessIssuer is an Issuer that keeps no record of what it signs (the
// local CA): a certificate it signed that the gateway never stored is as if
// it had never been signed. Finalize then skips storing the order as
// processing before the issuer call: a process that stops midway leaves the
// order ready, and the client finalizes again.
type recordlessIssuer interface {
	Issuer
	keepsNoRecord()
}

// IssueRequest is what an issuer needs to sign one certificate.
type IssueRequest struct {
	// CSR is the client's checked certificate request.
	CSR *x509.CertificateRequest
	// Names are the order's DNS names and IPAddresses its addresses,
	// which the CSR holds exactly.
	Names       []string
	IPAddresses []netip.Addr
	// NotBefore and NotAfter are the requested validity; zero means the
	// issuer's default.
	NotBefore, NotAfter time.Time
	AccountID           string
	OrderID             string
	// Email, when set, is put into the certificate as an rfc822Name SAN
	// (add_account_contact_email).
	Email string
	// Procedure, when set, is the account's registration's issuing
	// procedure, overriding the issuer's own.
	Procedure string
}

// PendingError says the CA will answer later; Ref finds the request again.
type PendingError struct {
	Ref        string
	RetryAfter time.Duration
}

func (e *PendingError) Error() string { return "issuance pending at the CA" }

// IssueError is a refusal by the CA that the client may see. Kind is the
// ACME problem type without its namespace ("badCSR", "rejectedIdentifier").
type IssueError struct {
	Kind   string
	Detail string
}

func (e *IssueError) Error() string { return e.Kind + ": " + e.Detail }

// issueProblem maps an issuer error to the problem the client sees.
func issueProblem(err error) *Problem {
	var ie *IssueError
	if errors.As(err, &ie) {
		status := 400
		if ie.Kind == "serverInternal" {
			status = 500
		}
		return newProblem(ie.Kind, status, "%s", ie.Detail)
	}
	return internalError(err)
}
