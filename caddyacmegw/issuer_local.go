package caddyacmegw

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddypki"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func init() {
	caddy.RegisterModule(LocalIssuer{})
}

// LocalIssuer signs certificates with the intermediate of a CA of Caddy's
// pki app. Its certificates are recorded by the gateway only: the local CA
// publishes no revocation lists.
type LocalIssuer struct {
	// CA is the id of the CA in the pki app. Default: "local".
	CA string `json:"ca,omitempty"`

	// Lifetime is the validity of issued certificates, and the longest an
	// order may ask for. Default: 24h. Clamped to the intermediate's own.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	ca *caddypki.CA
}

// CaddyModule returns the Caddy module information.
func (LocalIssuer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.issuers.local",
		New: func() caddy.Module { return new(LocalIssuer) },
	}
}

// Provision finds the CA in the pki app.
func (li *LocalIssuer) Provision(ctx caddy.Context) error {
	if li.CA == "" {
		li.CA = caddypki.DefaultCAID
	}
	if li.Lifetime == 0 {
		li.Lifetime = caddy.Duration(24 * time.Hour)
	}
	app, err := ctx.App("pki")
	if err != nil {
		return fmt.Errorf("loading pki app: %w", err)
	}
	ca, err := app.(*caddypki.PKI).GetCA(ctx, li.CA)
	if err != nil {
		return err
	}
	li.ca = ca
	return nil
}

// MaxLifetime implements Issuer.
func (li *LocalIssuer) MaxLifetime() time.Duration { return time.Duration(li.Lifetime) }

// Issue implements Issuer.
func (li *LocalIssuer) Issue(_ context.Context, req *gateway.IssueRequest) ([]*x509.Certificate, error) {
	chain := li.ca.IntermediateCertificateChain()
	if len(chain) == 0 {
		return nil, fmt.Errorf("CA %q has no intermediate", li.CA)
	}
	inter := chain[0]
	now := time.Now()
	notBefore := req.NotBefore
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Minute) // tolerate clients' clock skew
	}
	lifetime := time.Duration(li.Lifetime)
	if req.Lifetime != 0 {
		lifetime = req.Lifetime // the order's profile's
	}
	notAfter := req.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(lifetime)
	}
	if notAfter.After(inter.NotAfter) {
		notAfter = inter.NotAfter
	}
	tmpl, err := gateway.LeafTemplate(req, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter, req.CSR.PublicKey, li.ca.IntermediateKey())
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return append([]*x509.Certificate{leaf}, chain...), nil
}

// CheckProfile implements profileChecker: the local CA signs for a
// profile's lifetime up to its intermediate's own validity, and the
// extended key usages its intermediate allows; it has no procedures.
func (li *LocalIssuer) CheckProfile(p gateway.Profile) error {
	if p.Procedure != "" {
		return fmt.Errorf("procedure %q: issuer local has no procedures", p.Procedure)
	}
	chain := li.ca.IntermediateCertificateChain()
	if len(chain) == 0 {
		return fmt.Errorf("CA %q has no intermediate", li.CA)
	}
	inter := chain[0]
	if max := inter.NotAfter.Sub(inter.NotBefore); p.Lifetime > max {
		return fmt.Errorf("lifetime %s is beyond the validity of CA %q's intermediate, %s", p.Lifetime, li.CA, max)
	}
	if len(inter.ExtKeyUsage) > 0 && !slices.Contains(inter.ExtKeyUsage, x509.ExtKeyUsageAny) {
		for _, eku := range p.ExtKeyUsage {
			if !slices.Contains(inter.ExtKeyUsage, eku) {
				return fmt.Errorf("CA %q's intermediate may not sign extended key usage %d", li.CA, eku)
			}
		}
	}
	return nil
}

// Revoke implements Issuer: the local CA keeps no revocation state, so the
// gateway's own record is the revocation.
func (li *LocalIssuer) Revoke(context.Context, *x509.Certificate, int) error { return nil }

// KeepsNoRecord implements gateway.RecordlessIssuer: the local CA remembers nothing
// it signs.
func (*LocalIssuer) KeepsNoRecord() {}

// Describe says which CA signs and for how long, for the log at start.
func (li *LocalIssuer) Describe() string {
	return fmt.Sprintf("local CA %q, certificates valid %s", li.CA, time.Duration(li.Lifetime))
}

// Root returns the CA's root certificate, which clients must trust.
func (li *LocalIssuer) Root() *x509.Certificate { return li.ca.RootCertificate() }

// Interface guards
var (
	_ caddy.Provisioner = (*LocalIssuer)(nil)
	_ gateway.Issuer    = (*LocalIssuer)(nil)
	_ profileChecker    = (*LocalIssuer)(nil)
)
