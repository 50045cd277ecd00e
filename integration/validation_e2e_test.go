package integration

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
)

// The tests here show the validation added for a public CA's standard
// (tls-alpn-01, ip identifiers, CAA) end to end: lego with its own
// challenge servers against a real Caddy.

func TestLego_SolvesTLSALPN01(t *testing.T) {
	dnsSrv := startDNS(t)
	alpnPort := freePort(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		challenges tls-alpn-01
		tls_alpn_port %d
	`, dnsSrv.Addr(), alpnPort))

	alpn := &countingProvider{Provider: tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(alpnPort))}
	client := legoClientWith(t, g, func(c *lego.Client) error { return c.Challenge.SetTLSALPN01Provider(alpn) })

	res := legoObtain(t, client, "alpn.example.com")
	checkChain(t, g, parseChain(t, res.Certificate), "alpn.example.com")
	if n := alpn.presented.Load(); n != 1 {
		t.Fatalf("%d tls-alpn-01 challenges presented, want 1", n)
	}
}

func TestLego_IssuesCertificateForIPIdentifier(t *testing.T) {
	dnsSrv := startDNS(t)
	httpPort, alpnPort := freePort(t), freePort(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		allow_ip 127.0.0.0/8
		challenges http-01 tls-alpn-01
		http_port %d
		tls_alpn_port %d
	`, dnsSrv.Addr(), httpPort, alpnPort))

	for _, tc := range []struct {
		name     string
		provider challenge.Provider
		set      func(*lego.Client, challenge.Provider) error
	}{
		{"http-01", http01.NewProviderServer("127.0.0.1", strconv.Itoa(httpPort)),
			func(c *lego.Client, p challenge.Provider) error { return c.Challenge.SetHTTP01Provider(p) }},
		{"tls-alpn-01", tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(alpnPort)),
			func(c *lego.Client, p challenge.Provider) error { return c.Challenge.SetTLSALPN01Provider(p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh account each time, so that no valid authorization
			// of the other subtest is reused.
			p := &countingProvider{Provider: tc.provider}
			client := legoClientWith(t, g, func(c *lego.Client) error { return tc.set(c, p) })

			res := legoObtain(t, client, "127.0.0.1")
			leaf := verifyLeaf(t, g, parseChain(t, res.Certificate))
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
				t.Fatalf("leaf IP addresses %v, want exactly [127.0.0.1]", leaf.IPAddresses)
			}
			if len(leaf.DNSNames)+len(leaf.EmailAddresses)+len(leaf.URIs) > 0 {
				t.Fatalf("leaf has names besides the address: %v %v %v", leaf.DNSNames, leaf.EmailAddresses, leaf.URIs)
			}
			if n := p.presented.Load(); n != 1 {
				t.Fatalf("%d %s challenges presented, want 1", n, tc.name)
			}
		})
	}
}

func TestLego_CAARecordsDecideIssuance(t *testing.T) {
	dnsSrv := startDNS(t)
	// The parent names another CA; one name below it overrides that with
	// a record of its own, which is the relevant set (RFC 8659 §3).
	dnsSrv.SetCAA("caa.example.org", `other-ca.example`)
	dnsSrv.SetCAA("ours.caa.example.org", `ca.example.net`)
	dnsSrv.SetCAA("direct.example.com", `ca.example.net; validationmethods=http-01`)
	httpPort := freePort(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		challenges http-01
		http_port %d
		caa_identities ca.example.net
	`, dnsSrv.Addr(), httpPort))
	httpProvider := http01.NewProviderServer("127.0.0.1", strconv.Itoa(httpPort))

	t.Run("other CA named at the parent refuses", func(t *testing.T) {
		client := legoClientWith(t, g, func(c *lego.Client) error { return c.Challenge.SetHTTP01Provider(httpProvider) })
		_, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
			Domains: []string{"denied.caa.example.org"},
			Bundle:  true,
			KeyType: certcrypto.EC256,
		})
		wantLegoProblem(t, err, acme.CaaErrorType)
		if !strings.Contains(err.Error(), "other-ca.example") {
			t.Fatalf("error does not show the refusing record: %v", err)
		}
	})
	for _, name := range []string{"ours.caa.example.org", "direct.example.com"} {
		t.Run("this CA named at "+name+" allows", func(t *testing.T) {
			client := legoClientWith(t, g, func(c *lego.Client) error { return c.Challenge.SetHTTP01Provider(httpProvider) })
			res := legoObtain(t, client, name)
			checkChain(t, g, parseChain(t, res.Certificate), name)
		})
	}
}

// legoClientWith registers a new account with lego at g; setup installs
// the challenge providers.
func legoClientWith(t *testing.T, g *gateway, setup func(*lego.Client) error) *lego.Client {
	t.Helper()
	user := &legoUser{key: newKey(t)}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = g.Directory
	cfg.HTTPClient = g.HTTPClient()
	cfg.Certificate.Timeout = 20 * time.Second
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(client); err != nil {
		t.Fatal(err)
	}
	reg, err := client.Registration.Register(t.Context(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	user.reg = reg
	return client
}

// verifyLeaf verifies that chain, leaf first, leads to the gateway's CA
// for server authentication, whatever the leaf names, and returns the leaf.
func verifyLeaf(t testing.TB, g *gateway, chain []*x509.Certificate) *x509.Certificate {
	t.Helper()
	leaf := chain[0]
	if leaf.IsCA {
		t.Fatalf("chain starts with a CA certificate (%s), not the leaf", leaf.Subject)
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         g.Roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Fatalf("leaf does not verify against the gateway's CA: %v", err)
	}
	return leaf
}

// countingProvider counts the challenges a lego provider presented.
type countingProvider struct {
	challenge.Provider
	presented atomic.Int32
}

func (p *countingProvider) Present(ctx context.Context, domain, token, keyAuth string) error {
	p.presented.Add(1)
	return p.Provider.Present(ctx, domain, token, keyAuth)
}
