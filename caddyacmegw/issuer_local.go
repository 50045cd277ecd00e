package caddyacmegw

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddypki"
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
func (li *LocalIssuer) Issue(_ context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
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
	notAfter := req.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(time.Duration(li.Lifetime))
	}
	if notAfter.After(inter.NotAfter) {
		notAfter = inter.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cn := req.CSR.Subject.CommonName
	if cn == "" && len(req.Names) > 0 && len(req.Names[0]) <= 64 {
		cn = req.Names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              req.Names,
		IPAddresses:           netIPs(req.IPAddresses),
		EmailAddresses:        emailSAN(req.Email),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              keyUsage(req.CSR.PublicKey),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
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

// Revoke implements Issuer: the local CA keeps no revocation state, so the
// gateway's own record is the revocation.
func (li *LocalIssuer) Revoke(context.Context, *x509.Certificate, int) error { return nil }

// keepsNoRecord implements recordlessIssuer: the local CA remembers nothing
// it signs.
func (*LocalIssuer) keepsNoRecord() {}

// Root returns the CA's root certificate, which clients must trust.
func (li *LocalIssuer) Root() *x509.Certificate { return li.ca.RootCertificate() }

func netIPs(addrs []netip.Addr) []net.IP {
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.AsSlice()
	}
	return out
}

func emailSAN(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{addr}
}

func keyUsage(pub crypto.PublicKey) x509.KeyUsage {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return x509.KeyUsageDigitalSignature
	}
	return x509.KeyUsageDigitalSignature
}

// randomSerial returns a positive serial of 127 random bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

// Interface guards
var (
	_ caddy.Provisioner = (*LocalIssuer)(nil)
	_ Issuer            = (*LocalIssuer)(nil)
)
