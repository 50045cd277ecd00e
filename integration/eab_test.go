package integration

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// Pre-registration: in `registration preregistered` mode an account is
// made only with an external account binding (RFC 8555 §7.3.4) to a
// registration that an officer created through the admin API, and it may
// order only the names that registration allows.

// preregistered configures an in-memory gateway that requires external
// account binding and validates through the test DNS server and httpPort.
func preregistered(dns *testsrv.ZoneDNS, httpPort int) string {
	return fmt.Sprintf(`
		storage memory
		registration preregistered
		resolvers %s
		http_port %d
	`, dns.Addr(), httpPort)
}

// startEABEnv is startACMEEnv with the gateway in preregistered mode.
func startEABEnv(t testing.TB) *acmeEnv {
	t.Helper()
	dns := startDNS(t)
	resp := startHTTP01(t)
	g := startCaddy(t, preregistered(dns, resp.Port()))
	return newACMEEnv(g, dns, resp)
}

// randomHMACKey is a MAC key no registration has, encoded as the admin
// API encodes them.
func randomHMACKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// certbotStandalone are certbot's arguments for http-01 through its own
// server on httpPort, for names.
func certbotStandalone(httpPort int, names ...string) []string {
	args := []string{"--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", strconv.Itoa(httpPort)}
	for _, n := range names {
		args = append(args, "-d", n)
	}
	return args
}

// certbotEAB prepends certbot's binding arguments to args. As "--flag=value":
// a key id or base64url MAC key may begin with "-", which certbot's
// argument parser would take for an option.
func certbotEAB(kid, hmacKey string, args ...string) []string {
	return append([]string{"--eab-kid=" + kid, "--eab-hmac-key=" + hmacKey}, args...)
}

// wantCertbotProblem fails unless certbot exited with a failure and the
// problem of type typ is in its output or in its log of this run (certbot
// 2.1 does not always print the problem, see certbot_test.go).
func wantCertbotProblem(t testing.TB, cb *certbot, out string, err error, typ string) {
	t.Helper()
	log := cb.log()
	if !errExitCode(err) {
		t.Fatalf("certbot: err %v, want it to fail with %s\n%s\n--- log ---\n%s", err, typ, out, log)
	}
	problem := "urn:ietf:params:acme:error:" + typ
	if !strings.Contains(out, problem) && !strings.Contains(log, problem) {
		t.Fatalf("certbot failed without %s:\n%s\n--- log ---\n%s", problem, out, log)
	}
}

func TestCertbot_ObtainsWithEABWithinRegisteredDomains(t *testing.T) {
	bin := findCertbot(t)
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, preregistered(dns, httpPort))
	officer := g.admin()
	// A key id an officer chose, beginning with "-" as one in 64 random
	// ones do: certbot must get it as --eab-kid=<id>.
	reg := officer.createRegistration(t, map[string]any{"key_id": "certbot_1", "allowed_domains": []string{"example.com"}})
	cb := newCertbot(t, bin, g)

	const name = "eab.example.com"
	cb.mustRun(t, "certonly", certbotEAB(reg.KeyID, reg.HMACKey, certbotStandalone(httpPort, name)...)...)
	leaf := cb.checkLiveCert(t, g, name, name)

	// The registration is bound to certbot's new account, which holds the
	// certificate.
	bound := officer.getRegistration(t, reg.KeyID)
	accts := officer.accounts(t, "registration="+url.QueryEscape(reg.KeyID))
	if bound.AccountID == "" || len(accts) != 1 || accts[0].ID != bound.AccountID {
		t.Fatalf("registration bound to account %q; accounts made with it: %+v", bound.AccountID, accts)
	}
	certs := officer.certificates(t, "account="+url.QueryEscape(bound.AccountID))
	if len(certs) != 1 || certs[0].Serial != leaf.SerialNumber.Text(16) {
		t.Fatalf("account's certificates %+v, want serial %x", certs, leaf.SerialNumber)
	}

	// badexample.com ends in "example.com" but is not below it. certbot
	// uses its stored account, no binding needed.
	out, err := cb.run(t, "certonly", certbotStandalone(httpPort, "badexample.com")...)
	wantCertbotProblem(t, cb, out, err, "rejectedIdentifier")
}

func TestCertbot_EABRefusals(t *testing.T) {
	bin := findCertbot(t)
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, preregistered(dns, httpPort))
	officer := g.admin()
	domains := map[string]any{"allowed_domains": []string{"example.com"}}
	valid := officer.createRegistration(t, domains)
	disabled := officer.createRegistration(t, domains)
	officer.patchRegistration(t, disabled.KeyID, map[string]any{"status": "disabled"})

	tests := []struct {
		name, kid, hmacKey string
	}{
		{"wrong MAC", valid.KeyID, randomHMACKey(t)},
		{"unknown key id", "no-such-key-id", valid.HMACKey},
		{"disabled registration", disabled.KeyID, disabled.HMACKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := newCertbot(t, bin, g)
			out, err := cb.run(t, "certonly", certbotEAB(tc.kid, tc.hmacKey, certbotStandalone(httpPort, "refused.example.com")...)...)
			wantCertbotProblem(t, cb, out, err, "unauthorized")
		})
	}

	// certbot reads externalAccountRequired from the directory's meta and
	// stops before asking (lego, below, does ask).
	t.Run("no binding", func(t *testing.T) {
		cb := newCertbot(t, bin, g)
		out, err := cb.run(t, "certonly", certbotStandalone(httpPort, "refused.example.com")...)
		if !errExitCode(err) || !strings.Contains(out, "requires external account binding") {
			t.Fatalf("certbot without a binding: err %v\n%s", err, out)
		}
	})

	if accts := officer.accounts(t, ""); len(accts) != 0 {
		t.Fatalf("refused bindings made accounts: %+v", accts)
	}
	if r := officer.getRegistration(t, valid.KeyID); r.AccountID != "" {
		t.Fatalf("a wrong MAC bound registration %s to account %s", r.KeyID, r.AccountID)
	}
}

// legoEAB makes a lego client with a fresh key and registers it with the
// binding kid, hmacKey; the error is the registration's.
func legoEAB(t *testing.T, e *acmeEnv, kid, hmacKey string) (*lego.Client, *legoUser, error) {
	t.Helper()
	user := &legoUser{key: newKey(t)}
	client, _ := legoClient(t, e, user, "http-01")
	reg, err := client.Registration.RegisterWithExternalAccountBinding(t.Context(), registration.RegisterEABOptions{
		TermsOfServiceAgreed: true,
		Kid:                  kid,
		HmacEncoded:          hmacKey,
	})
	if err == nil {
		user.reg = reg
	}
	return client, user, err
}

// mustLegoEAB is legoEAB that fails the test when registering fails.
func mustLegoEAB(t *testing.T, e *acmeEnv, reg registrationJSON) (*lego.Client, *legoUser) {
	t.Helper()
	client, user, err := legoEAB(t, e, reg.KeyID, reg.HMACKey)
	if err != nil {
		t.Fatalf("registering with the binding of %s: %v", reg.KeyID, err)
	}
	return client, user
}

func TestLego_ObtainsWithEAB(t *testing.T) {
	e := startEABEnv(t)
	officer := e.G.admin()
	reg := officer.createRegistration(t, map[string]any{"allowed_domains": []string{"example.com"}})

	client, user := mustLegoEAB(t, e, reg)
	if user.reg.Status != acme.StatusValid {
		t.Fatalf("account status %q, want valid", user.reg.Status)
	}
	res := legoObtain(t, client, "le.example.com")
	checkChain(t, e.G, parseChain(t, res.Certificate), "le.example.com")

	bound := officer.getRegistration(t, reg.KeyID)
	if bound.AccountID == "" || !strings.HasSuffix(user.reg.Location, "/"+bound.AccountID) {
		t.Fatalf("registration bound to account %q, lego's account is %s", bound.AccountID, user.reg.Location)
	}
}

// Every way a newAccount can fail to bind, one problem each, and none of
// them makes an account.
func TestLego_EABRefusals(t *testing.T) {
	e := startEABEnv(t)
	officer := e.G.admin()
	domains := []string{"example.com"}
	// Created first, so that little is left to wait for in its case.
	expiring := officer.createRegistration(t, map[string]any{"allowed_domains": domains, "expires_in": "1s"})
	valid := officer.createRegistration(t, map[string]any{"allowed_domains": domains})
	disabled := officer.createRegistration(t, map[string]any{"allowed_domains": domains})
	officer.patchRegistration(t, disabled.KeyID, map[string]any{"status": "disabled"})
	used := officer.createRegistration(t, map[string]any{"allowed_domains": domains})
	_, first := mustLegoEAB(t, e, used)

	t.Run("no binding", func(t *testing.T) {
		client, _ := legoClient(t, e, &legoUser{key: newKey(t)}, "http-01")
		_, err := client.Registration.Register(t.Context(), registration.RegisterOptions{TermsOfServiceAgreed: true})
		wantLegoProblem(t, err, acme.ExternalAccountRequiredErrorType)
	})
	t.Run("wrong MAC", func(t *testing.T) {
		_, _, err := legoEAB(t, e, valid.KeyID, randomHMACKey(t))
		wantLegoProblem(t, err, acme.UnauthorizedErrorType)
	})
	t.Run("unknown key id", func(t *testing.T) {
		_, _, err := legoEAB(t, e, "no-such-key-id", valid.HMACKey)
		wantLegoProblem(t, err, acme.UnauthorizedErrorType)
	})
	t.Run("disabled registration", func(t *testing.T) {
		_, _, err := legoEAB(t, e, disabled.KeyID, disabled.HMACKey)
		wantLegoProblem(t, err, acme.UnauthorizedErrorType)
	})
	t.Run("key id used by another key", func(t *testing.T) {
		_, _, err := legoEAB(t, e, used.KeyID, used.HMACKey)
		wantLegoProblem(t, err, acme.UnauthorizedErrorType)
		if r := officer.getRegistration(t, used.KeyID); !strings.HasSuffix(first.reg.Location, "/"+r.AccountID) {
			t.Fatalf("registration now bound to %q, want the first key's account %s", r.AccountID, first.reg.Location)
		}
	})
	t.Run("expired registration", func(t *testing.T) {
		// An officer cannot set an expiry in the past, so the registration
		// was made to expire a second after its creation.
		past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		if status, body := officer.do(t, http.MethodPatch, "/registrations/"+valid.KeyID, map[string]any{"expires": past}); status != http.StatusBadRequest {
			t.Fatalf("PATCH expires %s: status %d, want 400: %s", past, status, body)
		}
		if expiring.Expires == nil {
			t.Fatal("registration made with expires_in has no expiry")
		}
		time.Sleep(time.Until(*expiring.Expires) + 50*time.Millisecond)
		_, _, err := legoEAB(t, e, expiring.KeyID, expiring.HMACKey)
		wantLegoProblem(t, err, acme.UnauthorizedErrorType)
	})

	accts := officer.accounts(t, "")
	if len(accts) != 1 || !strings.HasSuffix(first.reg.Location, "/"+accts[0].ID) {
		t.Fatalf("accounts %+v, want only the first key's %s", accts, first.reg.Location)
	}
	for _, r := range []registrationJSON{expiring, valid, disabled} {
		if got := officer.getRegistration(t, r.KeyID); got.AccountID != "" {
			t.Fatalf("refused registration %s is bound to account %s", r.KeyID, got.AccountID)
		}
	}
}

// The officer's later changes to a registration govern what its account
// may order: its allowed domains, and whether it is disabled.
func TestLego_EABRegistrationGovernsOrders(t *testing.T) {
	e := startEABEnv(t)
	officer := e.G.admin()
	reg := officer.createRegistration(t, map[string]any{"allowed_domains": []string{"example.com"}})
	client, _ := mustLegoEAB(t, e, reg)
	obtain := func(name string) error {
		_, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{Domains: []string{name}, KeyType: certcrypto.EC256})
		return err
	}

	wantLegoProblem(t, obtain("badexample.com"), acme.RejectedIdentifierErrorType)
	wantLegoProblem(t, obtain("www.example.net"), acme.RejectedIdentifierErrorType)

	officer.patchRegistration(t, reg.KeyID, map[string]any{"allowed_domains": []string{"example.com", "example.net"}})
	legoObtain(t, client, "www.example.net")

	officer.patchRegistration(t, reg.KeyID, map[string]any{"status": "disabled"})
	wantLegoProblem(t, obtain("www.example.com"), acme.UnauthorizedErrorType)

	officer.patchRegistration(t, reg.KeyID, map[string]any{"status": "active"})
	legoObtain(t, client, "www.example.com")
}
