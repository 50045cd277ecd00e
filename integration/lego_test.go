package integration

import (
	"context"
	"crypto"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// The tests here drive the gateway with lego v5, through its high-level
// Client (registration, certifier, challenge providers).

func TestLego_IssuesCertificateThroughHTTP01(t *testing.T) {
	e := startACMEEnv(t)
	client, user, presented := legoRegister(t, e, "http-01")
	if user.reg.Status != acme.StatusValid || user.reg.Location == "" {
		t.Fatalf("registration: status %q, location %q", user.reg.Status, user.reg.Location)
	}

	names := []string{"la.example.com", "lb.example.com"}
	res := legoObtain(t, client, names...)
	leaf := checkChain(t, e.G, parseChain(t, res.Certificate), names...)
	key, err := certcrypto.ParsePEMPrivateKey(res.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("leaf does not certify the key lego generated")
	}
	if n := presented.Load(); n != 2 {
		t.Fatalf("%d http-01 challenges presented, want 2", n)
	}
}

func TestLego_IssuesCertificateThroughDNS01(t *testing.T) {
	e := startACMEEnv(t)
	client, _, presented := legoRegister(t, e, "dns-01")

	res := legoObtain(t, client, "lc.example.com")
	checkChain(t, e.G, parseChain(t, res.Certificate), "lc.example.com")
	if n := presented.Load(); n != 1 {
		t.Fatalf("%d dns-01 challenges presented, want 1", n)
	}
}

func TestLego_IssuesWildcardWithBaseNameThroughDNS01(t *testing.T) {
	e := startACMEEnv(t)
	client, _, presented := legoRegister(t, e, "dns-01")

	names := []string{"*.example.com", "example.com"}
	res := legoObtain(t, client, names...)
	checkChain(t, e.G, parseChain(t, res.Certificate), names...)
	if n := presented.Load(); n != 2 {
		t.Fatalf("%d dns-01 challenges presented, want 2", n)
	}
}

func TestLego_RenewalReusesValidAuthorizations(t *testing.T) {
	e := startACMEEnv(t)
	client, user, presented := legoRegister(t, e, "http-01")
	names := []string{"lr1.example.com", "lr2.example.com"}
	first := legoObtain(t, client, names...)
	if n := presented.Load(); n != 2 {
		t.Fatalf("first issuance presented %d challenges, want 2", n)
	}

	// A new order for the same names is ready at once.
	core, err := api.New(e.G.HTTPClient(), "", e.G.Directory, user.reg.Location, user.key)
	if err != nil {
		t.Fatal(err)
	}
	order, err := core.Orders.New(t.Context(), names, nil)
	if err != nil {
		t.Fatal(err)
	}
	if order.Status != acme.StatusReady {
		t.Fatalf("second order is %q, want ready", order.Status)
	}

	second, err := client.Certificate.Renew(t.Context(), *first, &certificate.RenewOptions{Bundle: true})
	if err != nil {
		t.Fatalf("renewing: %v", err)
	}
	checkChain(t, e.G, parseChain(t, second.Certificate), names...)
	if n := presented.Load(); n != 2 {
		t.Fatalf("renewal presented %d new challenges, want none", n-2)
	}
	if string(first.Certificate) == string(second.Certificate) {
		t.Fatal("renewal returned the same certificate")
	}
}

func TestLego_KeyRolloverMovesAccountToNewKey(t *testing.T) {
	e := startACMEEnv(t)
	client, user, _ := legoRegister(t, e, "http-01")
	oldKey, next := user.key, newKey(t)

	if err := client.Registration.KeyRollover(t.Context(), next); err != nil {
		t.Fatalf("key rollover: %v", err)
	}

	withNew, _ := legoClient(t, e, &legoUser{key: next}, "http-01")
	found, err := withNew.Registration.ResolveAccountByKey(t.Context())
	if err != nil {
		t.Fatalf("resolving the account by its new key: %v", err)
	}
	if found.Location != user.reg.Location || found.Status != acme.StatusValid {
		t.Fatalf("new key finds %q (%s), want %q (valid)", found.Location, found.Status, user.reg.Location)
	}
	withOld, _ := legoClient(t, e, &legoUser{key: oldKey}, "http-01")
	_, err = withOld.Registration.ResolveAccountByKey(t.Context())
	wantLegoProblem(t, err, acme.AccountDoesNotExistErrorType)

	// The client that rolled over signs with the new key from now on.
	res := legoObtain(t, client, "lk.example.com")
	checkChain(t, e.G, parseChain(t, res.Certificate), "lk.example.com")
}

func TestLego_DeactivatedAccountIsUnauthorized(t *testing.T) {
	e := startACMEEnv(t)
	client, _, _ := legoRegister(t, e, "http-01")

	if err := client.Registration.DeleteRegistration(t.Context()); err != nil {
		t.Fatalf("deactivating: %v", err)
	}
	_, err := client.Registration.QueryRegistration(t.Context())
	wantLegoProblem(t, err, acme.UnauthorizedErrorType)
	_, err = client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{Domains: []string{"ld.example.com"}, KeyType: certcrypto.EC256})
	wantLegoProblem(t, err, acme.UnauthorizedErrorType)
}

func TestLego_RevokeByIssuingAccount(t *testing.T) {
	e := startACMEEnv(t)
	client, _, _ := legoRegister(t, e, "http-01")
	res := legoObtain(t, client, "lv1.example.com")

	if err := client.Certificate.Revoke(t.Context(), res.Certificate); err != nil {
		t.Fatalf("revoking by the issuing account: %v", err)
	}
	wantLegoProblem(t, client.Certificate.Revoke(t.Context(), res.Certificate), acme.AlreadyRevokedErrorType)
}

func TestLego_RevokeByAccountHoldingAuthorizations(t *testing.T) {
	e := startACMEEnv(t)
	issuer, _, _ := legoRegister(t, e, "http-01")
	names := []string{"lv2.example.com", "lv3.example.com"}
	res := legoObtain(t, issuer, names...)

	// The other account authorizes the same names by obtaining its own
	// certificate for them.
	other, _, _ := legoRegister(t, e, "http-01")
	legoObtain(t, other, names...)
	if err := other.Certificate.Revoke(t.Context(), res.Certificate); err != nil {
		t.Fatalf("revoking by an account authorized for every name: %v", err)
	}
	wantLegoProblem(t, issuer.Certificate.Revoke(t.Context(), res.Certificate), acme.AlreadyRevokedErrorType)
}

func TestLego_RevokeByAccountWithoutAuthorizationsIsUnauthorized(t *testing.T) {
	e := startACMEEnv(t)
	issuer, _, _ := legoRegister(t, e, "http-01")
	res := legoObtain(t, issuer, "lv4.example.com")

	unrelated, _, _ := legoRegister(t, e, "http-01")
	wantLegoProblem(t, unrelated.Certificate.Revoke(t.Context(), res.Certificate), acme.UnauthorizedErrorType)
}

// legoUser is the account lego acts for.
type legoUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                       { return "ops@example.com" }
func (u *legoUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer           { return u.key }

// legoClient is a lego client for the gateway of e that solves only
// challenges of challengeType. The counter says how many it presented.
func legoClient(t *testing.T, e *acmeEnv, user *legoUser, challengeType string) (*lego.Client, *atomic.Int32) {
	t.Helper()
	cfg := lego.NewConfig(user)
	cfg.CADirURL = e.G.Directory
	cfg.HTTPClient = e.G.HTTPClient()
	cfg.Certificate.Timeout = 20 * time.Second
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	presented := new(atomic.Int32)
	switch challengeType {
	case "http-01":
		err = client.Challenge.SetHTTP01Provider(legoHTTP01Provider{http: e.HTTP, presented: presented})
	case "dns-01":
		// lego would otherwise ask the system resolver for CNAMEs and
		// for propagation; the record is on the test server as soon as
		// Present returns.
		t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true")
		err = client.Challenge.SetDNS01Provider(legoDNS01Provider{txt: e.TXT, presented: presented},
			dns01.WrapPreCheck(func(context.Context, string, string, string, dns01.PreCheckFunc) (bool, error) {
				return true, nil
			}))
	}
	if err != nil {
		t.Fatal(err)
	}
	return client, presented
}

// legoRegister registers a new account with a fresh P-256 key.
func legoRegister(t *testing.T, e *acmeEnv, challengeType string) (*lego.Client, *legoUser, *atomic.Int32) {
	t.Helper()
	user := &legoUser{key: newKey(t)}
	client, presented := legoClient(t, e, user, challengeType)
	reg, err := client.Registration.Register(t.Context(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	user.reg = reg
	return client, user, presented
}

// legoObtain runs the whole issuance for names; the resource holds the
// chain as served, leaf first.
func legoObtain(t *testing.T, client *lego.Client, names ...string) *certificate.Resource {
	t.Helper()
	res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: names,
		Bundle:  true,
		KeyType: certcrypto.EC256,
	})
	if err != nil {
		t.Fatalf("obtaining %v: %v", names, err)
	}
	return res
}

// wantLegoProblem fails unless err carries the ACME problem typ.
func wantLegoProblem(t *testing.T, err error, typ string) {
	t.Helper()
	var p *acme.ProblemDetails
	if !errors.As(err, &p) {
		t.Fatalf("got error %v, want problem %s", err, typ)
	}
	if p.Type != typ {
		t.Fatalf("got problem %s (%s), want %s", p.Type, p.Detail, typ)
	}
}

type legoHTTP01Provider struct {
	http      *testsrv.HTTP01
	presented *atomic.Int32
}

func (p legoHTTP01Provider) Present(_ context.Context, _, token, keyAuth string) error {
	p.presented.Add(1)
	p.http.Set(token, keyAuth)
	return nil
}

func (p legoHTTP01Provider) CleanUp(_ context.Context, _, token, _ string) error {
	p.http.Delete(token)
	return nil
}

type legoDNS01Provider struct {
	txt       *txtRecords
	presented *atomic.Int32
}

func (p legoDNS01Provider) Present(_ context.Context, domain, _, keyAuth string) error {
	p.presented.Add(1)
	p.txt.Add("_acme-challenge."+domain, dns01Value(keyAuth))
	return nil
}

func (p legoDNS01Provider) CleanUp(_ context.Context, domain, _, keyAuth string) error {
	p.txt.Remove("_acme-challenge."+domain, dns01Value(keyAuth))
	return nil
}

// Timeout makes lego wait 10ms, not its default 2s, before it checks
// (here: skips checking) propagation.
func (p legoDNS01Provider) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 10 * time.Millisecond
}
