package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// The tests here drive the gateway with acmez (the ACME library under
// Caddy and certmagic): its high-level Client for issuance, its acme
// package for single requests.

func TestACMEZ_IssuesCertificateThroughHTTP01(t *testing.T) {
	e := startACMEEnv(t)
	c, presented := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	if acct.Status != acme.StatusValid || acct.Location == "" || acct.Orders == "" {
		t.Fatalf("new account: status %q, location %q, orders %q", acct.Status, acct.Location, acct.Orders)
	}

	names := []string{"a.example.com", "b.example.com"}
	chain, key := acmezObtain(t, c, acct, names...)
	leaf := checkChain(t, e.G, chain, names...)
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("leaf does not certify the CSR's key")
	}
	if n := presented.Load(); n != 2 {
		t.Fatalf("%d http-01 challenges presented, want one per name (2)", n)
	}
}

func TestACMEZ_IssuesCertificateThroughDNS01(t *testing.T) {
	e := startACMEEnv(t)
	c, presented := acmezClient(e, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)

	chain, _ := acmezObtain(t, c, acct, "c.example.com")
	checkChain(t, e.G, chain, "c.example.com")
	if n := presented.Load(); n != 1 {
		t.Fatalf("%d dns-01 challenges presented, want 1", n)
	}
}

func TestACMEZ_IssuesWildcardWithBaseNameThroughDNS01(t *testing.T) {
	e := startACMEEnv(t)
	c, presented := acmezClient(e, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)

	names := []string{"*.example.com", "example.com"}
	chain, _ := acmezObtain(t, c, acct, names...)
	checkChain(t, e.G, chain, names...)
	// Two authorizations, both validated through _acme-challenge.example.com.
	if n := presented.Load(); n != 2 {
		t.Fatalf("%d dns-01 challenges presented, want 2", n)
	}
}

func TestACMEZ_RenewalReusesValidAuthorizations(t *testing.T) {
	e := startACMEEnv(t)
	c, presented := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	names := []string{"r.example.com", "s.example.com"}
	first, _ := acmezObtain(t, c, acct, names...)
	if n := presented.Load(); n != 2 {
		t.Fatalf("first issuance presented %d challenges, want 2", n)
	}

	// A new order for the same names is ready at once, on valid authorizations.
	order, err := c.NewOrder(t.Context(), acct, acme.Order{Identifiers: dnsIdentifiers(names)})
	if err != nil {
		t.Fatal(err)
	}
	if order.Status != acme.StatusReady {
		t.Fatalf("second order is %q, want ready", order.Status)
	}
	for _, u := range order.Authorizations {
		authz, err := c.GetAuthorization(t.Context(), acct, u)
		if err != nil {
			t.Fatal(err)
		}
		if authz.Status != acme.StatusValid {
			t.Fatalf("authorization %s of the second order is %q, want valid", u, authz.Status)
		}
	}

	second, _ := acmezObtain(t, c, acct, names...)
	checkChain(t, e.G, second, names...)
	if n := presented.Load(); n != 2 {
		t.Fatalf("renewal presented %d new challenges, want none", n-2)
	}
	if first[0].SerialNumber.Cmp(second[0].SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}
}

func TestACMEZ_KeyRolloverMovesAccountToNewKey(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	oldKey := acct.PrivateKey
	next := newKey(t)

	rolled, err := c.AccountKeyRollover(t.Context(), acct, next)
	if err != nil {
		t.Fatalf("key rollover: %v", err)
	}

	found, err := c.GetAccount(t.Context(), acme.Account{PrivateKey: next})
	if err != nil {
		t.Fatalf("looking up the account by its new key: %v", err)
	}
	if found.Location != acct.Location || found.Status != acme.StatusValid {
		t.Fatalf("new key finds %q (%s), want %q (valid)", found.Location, found.Status, acct.Location)
	}
	_, err = c.GetAccount(t.Context(), acme.Account{PrivateKey: oldKey})
	wantACMEZProblem(t, err, "accountDoesNotExist")

	// The account works with the new key and no longer with the old one.
	if _, err := c.NewOrder(t.Context(), rolled, acme.Order{Identifiers: dnsIdentifiers([]string{"k.example.com"})}); err != nil {
		t.Fatalf("order with the new key: %v", err)
	}
	stale := acct // the account URL with the old key
	_, err = c.NewOrder(t.Context(), stale, acme.Order{Identifiers: dnsIdentifiers([]string{"k.example.com"})})
	wantACMEZProblem(t, err, "malformed")
	chain, _ := acmezObtain(t, c, rolled, "k.example.com")
	checkChain(t, e.G, chain, "k.example.com")
}

func TestACMEZ_DeactivatedAccountIsUnauthorized(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)

	acct.Status = acme.StatusDeactivated
	updated, err := c.UpdateAccount(t.Context(), acct)
	if err != nil {
		t.Fatalf("deactivating: %v", err)
	}
	if updated.Status != acme.StatusDeactivated {
		t.Fatalf("account is %q after deactivation", updated.Status)
	}

	_, err = c.NewOrder(t.Context(), acct, acme.Order{Identifiers: dnsIdentifiers([]string{"d.example.com"})})
	wantACMEZProblem(t, err, "unauthorized")
	acct.Status = ""
	_, err = c.UpdateAccount(t.Context(), acct)
	wantACMEZProblem(t, err, "unauthorized")
	_, err = c.GetAccount(t.Context(), acme.Account{PrivateKey: acct.PrivateKey})
	wantACMEZProblem(t, err, "unauthorized")
}

func TestACMEZ_RevokeByIssuingAccount(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	chain, _ := acmezObtain(t, c, acct, "v1.example.com")

	if err := c.RevokeCertificate(t.Context(), acct, chain[0], nil, acme.ReasonSuperseded); err != nil {
		t.Fatalf("revoking by the issuing account: %v", err)
	}
	err := c.RevokeCertificate(t.Context(), acct, chain[0], nil, acme.ReasonSuperseded)
	wantACMEZProblem(t, err, "alreadyRevoked")
}

func TestACMEZ_RevokeByAccountHoldingAuthorizations(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	issuer := acmezAccount(t, c)
	names := []string{"v2.example.com", "v3.example.com"}
	chain, _ := acmezObtain(t, c, issuer, names...)

	other := acmezAccount(t, c)
	acmezAuthorize(t, e, c, other, names...)
	if err := c.RevokeCertificate(t.Context(), other, chain[0], nil, acme.ReasonUnspecified); err != nil {
		t.Fatalf("revoking by an account authorized for every name: %v", err)
	}
	err := c.RevokeCertificate(t.Context(), issuer, chain[0], nil, acme.ReasonUnspecified)
	wantACMEZProblem(t, err, "alreadyRevoked")
}

func TestACMEZ_RevokeByCertificateKey(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	chain, certKey := acmezObtain(t, c, acct, "v4.example.com")

	// Signed by the certificate's key, with it as jwk: no account involved.
	if err := c.RevokeCertificate(t.Context(), acme.Account{}, chain[0], certKey, acme.ReasonKeyCompromise); err != nil {
		t.Fatalf("revoking with the certificate's key: %v", err)
	}
	err := c.RevokeCertificate(t.Context(), acme.Account{}, chain[0], certKey, acme.ReasonKeyCompromise)
	wantACMEZProblem(t, err, "alreadyRevoked")
}

func TestACMEZ_RevokeByAccountWithoutAuthorizationsIsUnauthorized(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	issuer := acmezAccount(t, c)
	names := []string{"v5.example.com", "v6.example.com"}
	chain, _ := acmezObtain(t, c, issuer, names...)

	unrelated := acmezAccount(t, c)
	err := c.RevokeCertificate(t.Context(), unrelated, chain[0], nil, acme.ReasonUnspecified)
	wantACMEZProblem(t, err, "unauthorized")

	// Authorizations for some of the names are not enough.
	partial := acmezAccount(t, c)
	acmezAuthorize(t, e, c, partial, names[0])
	err = c.RevokeCertificate(t.Context(), partial, chain[0], nil, acme.ReasonUnspecified)
	wantACMEZProblem(t, err, "unauthorized")

	// Neither attempt revoked it.
	if err := c.RevokeCertificate(t.Context(), issuer, chain[0], nil, acme.ReasonUnspecified); err != nil {
		t.Fatalf("revoking by the issuing account afterwards: %v", err)
	}
}

func TestACMEZ_OrdersListReturnsAccountOrders(t *testing.T) {
	e := startACMEEnv(t)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	other := acmezAccount(t, c)

	// One order finalized, one left pending, and one of another account.
	finalized := acmezAuthorize(t, e, c, acct, "o1.example.com")
	csr, err := acmez.NewCSR(newKey(t), []string{"o1.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	finalized, err = c.FinalizeOrder(t.Context(), acct, finalized, csr.Raw)
	if err != nil || finalized.Status != acme.StatusValid {
		t.Fatalf("finalizing: status %q, %v", finalized.Status, err)
	}
	pending, err := c.NewOrder(t.Context(), acct, acme.Order{Identifiers: dnsIdentifiers([]string{"o2.example.com"})})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := c.NewOrder(t.Context(), other, acme.Order{Identifiers: dnsIdentifiers([]string{"o3.example.com"})})
	if err != nil {
		t.Fatal(err)
	}

	got := listOrders(t, e.G, acct)
	want := slices.Sorted(slices.Values([]string{finalized.Location, pending.Location}))
	if !slices.Equal(got, want) {
		t.Fatalf("orders list %v, want %v", got, want)
	}
	if got := listOrders(t, e.G, other); !slices.Equal(got, []string{foreign.Location}) {
		t.Fatalf("other account's orders list %v, want [%s]", got, foreign.Location)
	}

	// One account cannot read another's list.
	resp := postJWS(t, e.G, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, other.Orders, nil)
	if resp.Status != http.StatusForbidden || problemType(resp.Body) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("reading another account's orders: HTTP %d %s", resp.Status, resp.Body)
	}
}

// listOrders reads an account's orders list (RFC 8555 §7.1.2.1), sorted.
func listOrders(t *testing.T, g *gateway, acct acme.Account) []string {
	t.Helper()
	resp := postJWS(t, g, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, acct.Orders, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("orders list: HTTP %d %s", resp.Status, resp.Body)
	}
	var list struct {
		Orders []string `json:"orders"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		t.Fatalf("orders list: %v", err)
	}
	return slices.Sorted(slices.Values(list.Orders))
}

func problemType(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Type
}

// acmezClient is an acmez client for the gateway of e that solves only
// challenges of challengeType. The counter says how many it presented.
func acmezClient(e *acmeEnv, challengeType string) (*acmez.Client, *atomic.Int32) {
	presented := new(atomic.Int32)
	solvers := map[string]acmez.Solver{}
	switch challengeType {
	case acme.ChallengeTypeHTTP01:
		solvers[challengeType] = acmezHTTP01Solver{http: e.HTTP, presented: presented}
	case acme.ChallengeTypeDNS01:
		solvers[challengeType] = acmezDNS01Solver{txt: e.TXT, presented: presented}
	}
	return &acmez.Client{
		Client: &acme.Client{
			Directory:  e.G.Directory,
			HTTPClient: e.G.HTTPClient(),
			// The gateway answers authorizations without Retry-After;
			// validation on loopback takes milliseconds.
			PollInterval: 20 * time.Millisecond,
			PollTimeout:  20 * time.Second,
		},
		ChallengeSolvers: solvers,
	}, presented
}

// acmezAccount registers a new account with a fresh P-256 key.
func acmezAccount(t *testing.T, c *acmez.Client) acme.Account {
	t.Helper()
	acct, err := c.NewAccount(t.Context(), acme.Account{
		Contact:              []string{"mailto:ops@example.com"},
		TermsOfServiceAgreed: true,
		PrivateKey:           newKey(t),
	})
	if err != nil {
		t.Fatalf("new account: %v", err)
	}
	return acct
}

// acmezObtain runs the whole issuance for names with a fresh certificate
// key and returns the first chain offered, leaf first, and that key.
func acmezObtain(t *testing.T, c *acmez.Client, acct acme.Account, names ...string) ([]*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newKey(t)
	certs, err := c.ObtainCertificateForSANs(t.Context(), acct, key, names)
	if err != nil {
		t.Fatalf("obtaining %v: %v", names, err)
	}
	if len(certs) == 0 {
		t.Fatalf("obtaining %v: no chain", names)
	}
	return parseChain(t, certs[0].ChainPEM), key
}

// acmezAuthorize creates an order for names and completes its
// authorizations through http-01, without finalizing it.
func acmezAuthorize(t *testing.T, e *acmeEnv, c *acmez.Client, acct acme.Account, names ...string) acme.Order {
	t.Helper()
	ctx := t.Context()
	order, err := c.NewOrder(ctx, acct, acme.Order{Identifiers: dnsIdentifiers(names)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range order.Authorizations {
		authz, err := c.GetAuthorization(ctx, acct, u)
		if err != nil {
			t.Fatal(err)
		}
		if authz.Status == acme.StatusValid {
			continue
		}
		i := slices.IndexFunc(authz.Challenges, func(ch acme.Challenge) bool { return ch.Type == acme.ChallengeTypeHTTP01 })
		if i < 0 {
			t.Fatalf("authorization %s offers no http-01", u)
		}
		chal := authz.Challenges[i]
		e.HTTP.Set(chal.Token, chal.KeyAuthorization)
		if _, err := c.InitiateChallenge(ctx, acct, chal); err != nil {
			t.Fatal(err)
		}
		if authz, err = c.PollAuthorization(ctx, acct, authz); err != nil || authz.Status != acme.StatusValid {
			t.Fatalf("authorization %s: status %q, %v", u, authz.Status, err)
		}
		e.HTTP.Delete(chal.Token)
	}
	order, err = c.GetOrder(ctx, acct, order)
	if err != nil || order.Status != acme.StatusReady {
		t.Fatalf("order after authorizing: status %q, %v", order.Status, err)
	}
	return order
}

func dnsIdentifiers(names []string) []acme.Identifier {
	ids := make([]acme.Identifier, len(names))
	for i, n := range names {
		ids[i] = acme.Identifier{Type: "dns", Value: n}
	}
	return ids
}

// wantACMEZProblem fails unless err carries the ACME problem typ.
func wantACMEZProblem(t *testing.T, err error, typ string) {
	t.Helper()
	var p acme.Problem
	if !errors.As(err, &p) {
		t.Fatalf("got error %v, want problem %s", err, typ)
	}
	if p.Type != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("got problem %s (%s), want %s", p.Type, p.Detail, typ)
	}
}

type acmezHTTP01Solver struct {
	http      *testsrv.HTTP01
	presented *atomic.Int32
}

func (s acmezHTTP01Solver) Present(_ context.Context, c acme.Challenge) error {
	s.presented.Add(1)
	s.http.Set(c.Token, c.KeyAuthorization)
	return nil
}

func (s acmezHTTP01Solver) CleanUp(_ context.Context, c acme.Challenge) error {
	s.http.Delete(c.Token)
	return nil
}

type acmezDNS01Solver struct {
	txt       *txtRecords
	presented *atomic.Int32
}

func (s acmezDNS01Solver) Present(_ context.Context, c acme.Challenge) error {
	s.presented.Add(1)
	s.txt.Add(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
	return nil
}

func (s acmezDNS01Solver) CleanUp(_ context.Context, c acme.Challenge) error {
	s.txt.Remove(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
	return nil
}
