package gateway

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
	// a *PendingError when the outcome is not known yet: with a Ref (an
	// answer that was lost) only if the issuer is also a Resumer; without
	// one to have Issue called again from the stored CSR later (a
	// transient outage, when retrying cannot issue twice). It returns an
	// *IssueError when the CA refused the request for a reason the client
	// should see.
	Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error)
	// Revoke revokes a certificate this issuer signed. A nil error means
	// the CA confirmed it.
	Revoke(ctx context.Context, cert *x509.Certificate, reason int) error
	// MaxLifetime is the longest validity a certificate may have; orders
	// asking for more are refused. Zero: the CA sets the validity, and
	// orders may not ask for one.
	MaxLifetime() time.Duration
}

// Resumer is an Issuer whose CA keeps what it signed, and that can find
// out what became of a request whose outcome is unknown.
type Resumer interface {
	// Resume returns the chain of req once the CA is known to have issued
	// it, a *PendingError while it should look again later, or another
	// error when it failed. ref is the Ref of the issuer's *PendingError,
	// or "" for a request that a process which stopped may have sent
	// after it stored the order processing at since.
	Resume(ctx context.Context, req *IssueRequest, ref string, since time.Time) ([]*x509.Certificate, error)
}

// RecordlessIssuer is an Issuer that keeps no record of what it signs (the
// local CA): a certificate it signed that the gateway never stored is as if
// it had never been signed. Finalize then skips storing the order as
// processing before the issuer call: a process that stops midway leaves the
// order ready, and the client finalizes again.
type RecordlessIssuer interface {
	Issuer
	KeepsNoRecord()
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
	// Procedure, when set, is one of the issuer's procedures, overriding
	// its default: the order's profile's, or else the account's
	// registration's.
	Procedure string
	// Profile is the name of the order's profile, "" for none. Lifetime,
	// when set, is its validity, in place of the issuer's default;
	// KeyUsage and ExtKeyUsage, when set, its usages (LeafTemplate).
	Profile     string
	Lifetime    time.Duration
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
}

// PendingError says the CA will answer later; Ref finds the request again.
type PendingError struct {
	Ref        string
	RetryAfter time.Duration
}

func (e *PendingError) Error() string { return "issuance pending at the CA" }

// IssueError is a refusal by the CA that the client may see, as the ACME
// problem of Kind (ProblemBadCSR, ProblemRejectedIdentifier, ...).
type IssueError struct {
	Kind   ProblemType
	Detail string
}

func (e *IssueError) Error() string { return string(e.Kind) + ": " + e.Detail }

// issueProblem maps an issuer error to the problem the client sees.
func issueProblem(err error) *Problem {
	var ie *IssueError
	if errors.As(err, &ie) {
		return problem(ie.Kind, "%s", ie.Detail)
	}
	return internalError(err)
}
