package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// worker is one client and its account. The issuance is written out here
// on acmez's protocol client rather than left to its high-level one,
// which waits one poll interval before it first looks at an
// authorization even when the server has answered the challenge with its
// outcome (RFC 8555 §7.5.1 allows that): the figures would measure that
// wait, not the server.
type worker struct {
	client    *acme.Client
	account   acme.Account
	challenge string // the type answered
	solver    solver
}

// solver puts a challenge's response where the server looks for it and
// takes it away again. Workers share one, so it must be safe for
// concurrent use.
type solver interface {
	present(acme.Challenge)
	cleanUp(acme.Challenge)
}

func newWorker(ctx context.Context, cfg Config, i int) (worker, error) {
	var s solver = dnsSolver{cfg.DNS}
	if cfg.Challenge == acme.ChallengeTypeHTTP01 {
		s = http01Solver{cfg.HTTP01}
	}
	// One protocol client a worker: each keeps its own nonces, while all
	// share cfg.HTTPClient and so its kept-alive connections.
	client := &acme.Client{
		Directory:    cfg.Directory,
		HTTPClient:   cfg.HTTPClient,
		UserAgent:    "acmeload",
		PollInterval: cfg.PollInterval,
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return worker{}, err
	}
	account := acme.Account{TermsOfServiceAgreed: true, PrivateKey: key}
	if cfg.EAB != nil {
		if err := account.SetExternalAccountBinding(ctx, client, cfg.EAB[i]); err != nil {
			return worker{}, fmt.Errorf("worker %d: external account binding %s: %w", i, cfg.EAB[i].KeyID, err)
		}
	}
	account, err = client.NewAccount(ctx, account)
	if err != nil {
		return worker{}, fmt.Errorf("worker %d: new account: %w", i, err)
	}
	return worker{client: client, account: account, challenge: cfg.Challenge, solver: s}, nil
}

// newCSR makes a key of keyType and a CSR for names signed with it.
func newCSR(keyType string, names []string) ([]byte, error) {
	key, err := newKey(keyType)
	if err != nil {
		return nil, err
	}
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
}

// issue obtains a certificate for names with csr, which asks for them:
// new order, one challenge for each authorization that is not valid yet,
// finalization and download of the default chain. It polls only where the
// server's answer is not final, and then as often as its Retry-After says
// (the poll interval without one).
func (w worker) issue(ctx context.Context, names []string, csr []byte) error {
	ids := make([]acme.Identifier, len(names))
	for i, name := range names {
		ids[i] = acme.Identifier{Type: "dns", Value: name}
	}
	order, err := w.client.NewOrder(ctx, w.account, acme.Order{Identifiers: ids})
	if err != nil {
		return &stepError{stepNewOrder, err}
	}
	for _, url := range order.Authorizations {
		if err := w.authorize(ctx, url); err != nil {
			return err
		}
	}
	// FinalizeOrder returns at once when its answer is final.
	order, err = w.client.FinalizeOrder(ctx, w.account, order, csr)
	if err != nil {
		return &stepError{stepFinalize, err}
	}
	// acmez has no way to leave out the alternate chains a server links
	// to; none is fetched where, as here mostly, none is linked.
	chains, err := w.client.GetCertificateChain(ctx, w.account, order.Certificate)
	if err != nil {
		return &stepError{stepCertificate, err}
	}
	if len(chains) == 0 || len(chains[0].ChainPEM) == 0 {
		return &stepError{stepCertificate, errors.New("empty certificate chain")}
	}
	return nil
}

// authorize makes the authorization at url valid by answering the
// configured challenge, unless it is valid already.
func (w worker) authorize(ctx context.Context, url string) error {
	authz, err := w.client.GetAuthorization(ctx, w.account, url)
	if err != nil {
		return &stepError{stepAuthorization, err}
	}
	if authz.Status == acme.StatusValid {
		return nil
	}
	if authz.Status != acme.StatusPending {
		return &stepError{stepAuthorization, fmt.Errorf("%s is %s", authz.IdentifierValue(), authz.Status)}
	}
	i := slices.IndexFunc(authz.Challenges, func(c acme.Challenge) bool { return c.Type == w.challenge })
	if i < 0 {
		return &stepError{stepAuthorization, fmt.Errorf("%s: no %s challenge offered", authz.IdentifierValue(), w.challenge)}
	}
	chal := authz.Challenges[i]
	w.solver.present(chal)
	defer w.solver.cleanUp(chal)

	answer, err := w.client.InitiateChallenge(ctx, w.account, chal)
	if err != nil {
		return &stepError{stepChallenge, err}
	}
	switch answer.Status {
	case acme.StatusValid:
		// Validated before the server answered: nothing to poll.
		return nil
	case acme.StatusInvalid:
		return &stepError{stepValidation, challengeFailed(answer)}
	}
	authz, err = w.client.PollAuthorization(ctx, w.account, authz)
	switch {
	case err == nil:
		return nil
	case authz.Status == acme.StatusInvalid:
		return &stepError{stepValidation, err}
	default:
		return &stepError{stepAuthorization, err}
	}
}

// challengeFailed is the error of an invalid challenge: its problem, when
// the server gave one.
func challengeFailed(c acme.Challenge) error {
	if c.Error == nil {
		return fmt.Errorf("%s challenge invalid, without a problem", c.Type)
	}
	return fmt.Errorf("%s challenge invalid: %w", c.Type, *c.Error)
}

// dnsSolver presents dns-01 records on the DNS server.
type dnsSolver struct{ dns *testsrv.ZoneDNS }

func (s dnsSolver) present(c acme.Challenge) {
	s.dns.AddTXT(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
}

func (s dnsSolver) cleanUp(c acme.Challenge) {
	s.dns.RemoveTXT(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
}

// http01Solver presents http-01 key authorizations on the responder.
type http01Solver struct{ srv *testsrv.HTTP01 }

func (s http01Solver) present(c acme.Challenge) { s.srv.Set(c.Token, c.KeyAuthorization) }

func (s http01Solver) cleanUp(c acme.Challenge) { s.srv.Delete(c.Token) }
