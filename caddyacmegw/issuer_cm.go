package caddyacmegw

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyacmegw/caddyacmegw/cmissuer"
)

func init() {
	caddy.RegisterModule(CMIssuer{})
}

// CMIssuer issues through Smart ID Certificate Manager (CM): the client's
// CSR goes to CM's REST API with a token procedure, so that CM's
// publishing, formats, OCSP and approval workflows apply to ACME
// certificates too. Revocations go to CM and count only once CM confirmed
// them.
type CMIssuer struct {
	// URL is CM's REST API base, e.g. https://cm.example.com:8443/pgwy/api.
	URL string `json:"url,omitempty"`

	// Procedure is the token procedure certificates are issued with; a
	// pre-registration's own procedure overrides it.
	Procedure string `json:"procedure,omitempty"`

	// ClientCertificate and ClientKey are PEM files of the officer
	// certificate and its unencrypted key, for mutual TLS.
	ClientCertificate string `json:"client_certificate,omitempty"`
	ClientKey         string `json:"client_key,omitempty"`

	// TrustedRoots is a PEM file of the roots CM's server certificate must
	// chain to.
	TrustedRoots string `json:"trusted_roots,omitempty"`

	// Timeout bounds every call to CM. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// PendingDeadline is how long an order may wait for CM (an approval
	// step, or CM unreachable) before it fails. Default: 24h.
	PendingDeadline caddy.Duration `json:"pending_deadline,omitempty"`

	// MaxValidity is the longest validity an order may ask for; CM's
	// procedure decides the rest. Default: 398 days.
	MaxValidity caddy.Duration `json:"max_validity,omitempty"`

	client *cmissuer.Client
}

// cmRetryAfter is how long a client is asked to wait while CM has not
// issued yet.
const cmRetryAfter = 5 * time.Second

// CaddyModule returns the Caddy module information.
func (CMIssuer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.issuers.cm",
		New: func() caddy.Module { return new(CMIssuer) },
	}
}

// Provision loads the officer credentials and CM's roots.
func (ci *CMIssuer) Provision(caddy.Context) error {
	if ci.PendingDeadline == 0 {
		ci.PendingDeadline = caddy.Duration(24 * time.Hour)
	}
	if ci.MaxValidity == 0 {
		ci.MaxValidity = caddy.Duration(398 * 24 * time.Hour)
	}
	client, err := cmissuer.New(cmissuer.Config{
		URL:       ci.URL,
		Procedure: ci.Procedure,
		CertFile:  ci.ClientCertificate,
		KeyFile:   ci.ClientKey,
		RootsFile: ci.TrustedRoots,
		Timeout:   time.Duration(ci.Timeout),
	})
	if err != nil {
		return fmt.Errorf("cm issuer: %w", err)
	}
	ci.client = client
	return nil
}

// Validate checks the configuration.
func (ci *CMIssuer) Validate() error {
	if ci.Procedure == "" {
		return errors.New("cm issuer: procedure is required")
	}
	return nil
}

// Cleanup closes idle connections to CM.
func (ci *CMIssuer) Cleanup() error {
	if ci.client != nil {
		ci.client.Close()
	}
	return nil
}

// MaxLifetime implements Issuer.
func (ci *CMIssuer) MaxLifetime() time.Duration { return time.Duration(ci.MaxValidity) }

// pendingDeadline implements pendingDeadliner.
func (ci *CMIssuer) pendingDeadline() time.Duration { return time.Duration(ci.PendingDeadline) }

// Issue implements Issuer. A request CM holds for approval is pending with
// its CM id as reference. When CM cannot be reached before the request was
// sent, issuance is pending without a reference and is tried again from
// the stored CSR. When the request may have reached CM, it is not sent
// again: that could issue a second certificate; the order fails instead.
func (ci *CMIssuer) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	procedure := ci.Procedure
	if req.Procedure != "" {
		procedure = req.Procedure
	}
	res, err := ci.client.Issue(ctx, req.CSR.Raw, procedure, req.NotBefore, req.NotAfter, req.Email)
	if err != nil {
		return nil, cmIssueError(err)
	}
	if res.Pending {
		return nil, &PendingError{Ref: res.ID, RetryAfter: cmRetryAfter}
	}
	return res.Chain, nil
}

// Resume implements Resumer.
func (ci *CMIssuer) Resume(ctx context.Context, ref string) ([]*x509.Certificate, error) {
	res, err := ci.client.Poll(ctx, ref)
	if err != nil {
		if !cmissuer.IsFinal(err) {
			return nil, &PendingError{Ref: ref, RetryAfter: cmRetryAfter}
		}
		return nil, cmIssueError(err)
	}
	if res.Pending {
		return nil, &PendingError{Ref: ref, RetryAfter: cmRetryAfter}
	}
	return res.Chain, nil
}

// Revoke implements Issuer: nil only when CM confirmed the revocation, or
// had it already.
func (ci *CMIssuer) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	err := ci.client.Revoke(ctx, cmissuer.SerialHex(cert.SerialNumber), reason)
	if err != nil && cmissuer.Classify(err) == cmissuer.KindAlreadyRevoked {
		return nil
	}
	return err
}

// cmIssueError maps a CM failure to what the gateway does with the order.
func cmIssueError(err error) error {
	var ce *cmissuer.Error
	switch cmissuer.Classify(err) {
	case cmissuer.KindCSR:
		return &IssueError{Kind: "badCSR", Detail: "the CA refused the CSR" + cmMessage(err)}
	case cmissuer.KindName:
		return &IssueError{Kind: "rejectedIdentifier", Detail: "the CA refused a name" + cmMessage(err)}
	case cmissuer.KindTransient:
		if errors.As(err, &ce) && ce.Ambiguous {
			return fmt.Errorf("CM did not answer an issue request it may have received; not repeating it: %w", err)
		}
		return &PendingError{RetryAfter: cmRetryAfter}
	}
	return err // config and other refusals: logged, the client sees serverInternal
}

// cmMessage is CM's own message, already bounded by the client.
func cmMessage(err error) string {
	var ce *cmissuer.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ": " + ce.Message
	}
	return ""
}

// UnmarshalCaddyfile sets up the CM issuer:
//
//	issuer cm {
//		url                 <url>
//		procedure           <token procedure>
//		client_certificate  <cert.pem> <key.pem>
//		trusted_roots       <roots.pem>
//		timeout             <duration>
//		pending_deadline    <duration>
//		max_validity        <duration>
//	}
func (ci *CMIssuer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "url":
			err = oneArg(d, &ci.URL)
		case "procedure":
			err = oneArg(d, &ci.Procedure)
		case "client_certificate":
			if !d.AllArgs(&ci.ClientCertificate, &ci.ClientKey) {
				err = d.ArgErr()
			}
		case "trusted_roots":
			err = oneArg(d, &ci.TrustedRoots)
		case "timeout":
			err = durationArg(d, &ci.Timeout)
		case "pending_deadline":
			err = durationArg(d, &ci.PendingDeadline)
		case "max_validity":
			err = durationArg(d, &ci.MaxValidity)
		default:
			return d.Errf("unrecognized cm issuer option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*CMIssuer)(nil)
	_ caddy.Validator       = (*CMIssuer)(nil)
	_ caddy.CleanerUpper    = (*CMIssuer)(nil)
	_ Issuer                = (*CMIssuer)(nil)
	_ Resumer               = (*CMIssuer)(nil)
	_ caddyfile.Unmarshaler = (*CMIssuer)(nil)
)
