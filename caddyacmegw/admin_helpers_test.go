package caddyacmegw

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/internal/testca"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

// testGateway is a Handler whose gateway is served by httptest, with a
// throwaway CA as its issuer and every challenge accepted, for the tests of
// the officers' API and CLI. ACME clients are acmez.
type testGateway struct {
	t      *testing.T
	h      *Handler
	srv    *httptest.Server
	store  *memory.Store
	issuer *testCA
	base   string // the ACME resources' URL
}

func newTestGateway(t *testing.T, name string) *testGateway {
	t.Helper()
	store := memory.New()
	nonces, err := gateway.NewNonceStore(time.Hour, 1000, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{t: t, store: store, issuer: newTestCA(t)}
	g.h = &Handler{Name: name, PathPrefix: "/acme", RegistrationMode: gateway.RegistrationOpen, store: store, issuer: g.issuer, logger: zap.NewNop(), now: time.Now}
	g.h.gw, err = gateway.New(gateway.Config{Name: name, PathPrefix: "/acme", Store: store, Nonces: nonces,
		Issuer: g.issuer, Validator: acceptAll{}})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewTLSServer(g.h.gw)
	g.base = g.srv.URL + "/acme"
	t.Cleanup(func() { g.srv.Close(); g.h.gw.Close() })
	return g
}

// registration is the stored registration of keyID.
func (g *testGateway) registration(keyID string) *storage.Registration {
	g.t.Helper()
	reg, err := g.store.GetRegistration(context.Background(), keyID)
	if err != nil {
		g.t.Fatalf("registration %s: %v", keyID, err)
	}
	return reg
}

// client is an acmez client of g whose challenges need no solving.
func (g *testGateway) client() *acmez.Client {
	return &acmez.Client{
		Client: &acme.Client{Directory: g.base + gateway.PathDirectory, HTTPClient: g.srv.Client(),
			PollInterval: 10 * time.Millisecond, PollTimeout: 10 * time.Second},
		ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeHTTP01: nothingToSolve{}},
	}
}

// newAccount creates an account with contact mailto:ops@example.com,
// bound to the registration keyID with mac unless keyID is empty, and
// returns it and its id.
func (g *testGateway) newAccount(keyID string, mac []byte) (acme.Account, string, error) {
	c := g.client()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return acme.Account{}, "", err
	}
	acct := acme.Account{Contact: []string{"mailto:ops@example.com"}, TermsOfServiceAgreed: true, PrivateKey: key}
	if keyID != "" {
		eab := acme.EAB{KeyID: keyID, MACKey: base64.RawURLEncoding.EncodeToString(mac)}
		if err := acct.SetExternalAccountBinding(context.Background(), c.Client, eab); err != nil {
			return acme.Account{}, "", err
		}
	}
	acct, err = c.NewAccount(context.Background(), acct)
	return acct, strings.TrimPrefix(acct.Location, g.base+"/account/"), err
}

// mustAccount is newAccount that must succeed.
func (g *testGateway) mustAccount(keyID string, mac []byte) (acme.Account, string) {
	g.t.Helper()
	acct, id, err := g.newAccount(keyID, mac)
	if err != nil {
		g.t.Fatalf("new account (registration %q): %v", keyID, err)
	}
	return acct, id
}

// issue obtains a certificate for name and returns its leaf.
func (g *testGateway) issue(acct acme.Account, name string) *x509.Certificate {
	g.t.Helper()
	leaf, err := g.obtain(acct, name)
	if err != nil {
		g.t.Fatalf("obtaining %s: %v", name, err)
	}
	return leaf
}

func (g *testGateway) obtain(acct acme.Account, name string) (*x509.Certificate, error) {
	return g.obtainReplacing(acct, name, nil)
}

// obtainReplacing obtains a certificate for name whose order replaces
// old, unless old is nil.
func (g *testGateway) obtainReplacing(acct acme.Account, name string, old *x509.Certificate) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := acmez.NewCSR(key, []string{name})
	if err != nil {
		return nil, err
	}
	params, err := acmez.OrderParametersFromCSR(acct, csr)
	if err != nil {
		return nil, err
	}
	params.Replaces = old
	certs, err := g.client().ObtainCertificate(context.Background(), params)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certs[0].ChainPEM)
	return x509.ParseCertificate(block.Bytes)
}

type nothingToSolve struct{}

func (nothingToSolve) Present(context.Context, acme.Challenge) error { return nil }
func (nothingToSolve) CleanUp(context.Context, acme.Challenge) error { return nil }

// acceptAll is a validator that accepts every challenge.
type acceptAll struct{}

func (acceptAll) HTTP01(context.Context, string, string, string) error    { return nil }
func (acceptAll) DNS01(context.Context, string, string) error             { return nil }
func (acceptAll) TLSALPN01(context.Context, string, string) error         { return nil }
func (acceptAll) CAA(context.Context, string, bool, string, string) error { return nil }

// testCA is an issuer signing with a throwaway CA; it records
// revocations, or refuses them with revokeErr when set.
type testCA struct {
	*testca.CA
	revokeErr error
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := testca.New("admin test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{CA: ca}
}

func (ca *testCA) Issue(_ context.Context, req *gateway.IssueRequest) ([]*x509.Certificate, error) {
	tmpl, err := gateway.LeafTemplate(req, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	return ca.Sign(tmpl, req.CSR.PublicKey)
}

func (ca *testCA) Revoke(_ context.Context, c *x509.Certificate, reason int) error {
	if ca.revokeErr != nil {
		return ca.revokeErr
	}
	ca.CA.Revoke(c, reason)
	return nil
}

func (ca *testCA) MaxLifetime() time.Duration { return 24 * time.Hour }
