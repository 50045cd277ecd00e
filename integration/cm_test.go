package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// The tests here issue through the `cm` issuer against cmtest, the
// Certificate Manager simulator: certbot end to end in both of PGWY's
// signing modes, token procedures as endpoints, answers that are lost
// after CM carried out the request, and CM failing in the other ways it
// can. Every test checks CM's own counters, so that a certificate issued
// twice, or issued and lost, shows.

// certbot obtains, renews and revokes through CM, with the gateway signing
// PGWY's writes (caller) and with PGWY signing them itself (server): the
// certificates chain to CM's issuing root, each order is one signed issue
// request, and CM records the revocation with certbot's reason.
func TestCM_CertbotObtainsRenewsRevokes(t *testing.T) {
	bin := findCertbot(t)
	for _, mode := range []string{"caller", "server"} {
		t.Run(mode, func(t *testing.T) {
			srv := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
				cmtest.DefaultProcedure: {VRO: mode == "server"},
			}})
			dns := startDNS(t)
			httpPort := freePort(t)
			g := startCaddy(t, fmt.Sprintf(`
				storage memory
				resolvers %s
				http_port %d
				%s
			`, dns.Addr(), httpPort, cmIssuer{Signing: mode}.block(t, srv)))
			cb := newCertbot(t, bin, g)
			const name = "cm.example.com"
			standalone := certbotStandalone(httpPort, name)

			cb.mustRun(t, "certonly", standalone...)
			first := checkCMChain(t, srv, g, readCertChain(t, cb.liveFile(name, "fullchain.pem")), name)
			cmWantCounts(t, srv, 1, 1)

			cb.mustRun(t, "renew", "--cert-name", name, "--force-renewal")
			second := checkCMChain(t, srv, g, readCertChain(t, cb.liveFile(name, "fullchain.pem")), name)
			if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatalf("renewal kept serial %x", first.SerialNumber)
			}
			c := cmWantCounts(t, srv, 2, 2)
			wantChallenges := map[string]int{"caller": 2, "server": 0}[mode]
			if c.Challenges != wantChallenges || c.Requests[cmtest.RouteIssue] != 2+wantChallenges {
				t.Fatalf("%d data-to-sign answers from %d issue requests, want %d from %d",
					c.Challenges, c.Requests[cmtest.RouteIssue], wantChallenges, 2+wantChallenges)
			}

			cb.mustRun(t, "revoke", "--cert-path", cb.liveFile(name, "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
			if reason, revoked := srv.Revocation(second.SerialNumber.Text(16)); !revoked || reason != 4 {
				t.Fatalf("CM has the renewed certificate revoked=%v with reason %d, want revoked with 4 (superseded)", revoked, reason)
			}
			if _, revoked := srv.Revocation(first.SerialNumber.Text(16)); revoked {
				t.Fatal("CM revoked the first certificate too")
			}
			if c := srv.Counts(); c.Revoked != 1 {
				t.Fatalf("CM revoked %d certificates, want 1", c.Revoked)
			}
		})
	}
}

// Token procedures are endpoints: a registration names one, and its
// account's certificates are issued there; the others' go to the default.
// A registration naming a procedure the issuer does not have is refused
// when it is created or edited.
func TestCM_RegistrationPicksProcedureEndpoint(t *testing.T) {
	bin := findCertbot(t)
	const clientProc = "ACME TLS Client"
	srv := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
		cmtest.DefaultProcedure: {}, clientProc: {},
	}})
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, preregistered(dns, httpPort)+cmIssuer{Procedures: []string{cmtest.DefaultProcedure, clientProc}}.block(t, srv))
	officer := g.admin()

	if status, body := officer.do(t, http.MethodPost, "/registrations", map[string]any{"procedure": "No Such Procedure"}); status != http.StatusBadRequest || !strings.Contains(string(body), clientProc) {
		t.Fatalf("registration with an unknown procedure: %d %s, want 400 naming the known ones", status, body)
	}
	reg := officer.createRegistration(t, map[string]any{"procedure": clientProc})
	if status, body := officer.do(t, http.MethodPatch, "/registrations/"+url.PathEscape(reg.KeyID), map[string]any{"procedure": "Nope"}); status != http.StatusBadRequest {
		t.Fatalf("edit to an unknown procedure: %d %s, want 400", status, body)
	}
	other := officer.createRegistration(t, map[string]any{})

	cb := newCertbot(t, bin, g)
	cb.mustRun(t, "certonly", certbotEAB(reg.KeyID, reg.HMACKey, certbotStandalone(httpPort, "client.example.com")...)...)
	checkCMChain(t, srv, g, readCertChain(t, cb.liveFile("client.example.com", "fullchain.pem")), "client.example.com")
	cb2 := newCertbot(t, bin, g)
	cb2.mustRun(t, "certonly", certbotEAB(other.KeyID, other.HMACKey, certbotStandalone(httpPort, "server.example.com")...)...)

	if c := srv.Counts(); c.IssuedBy[clientProc] != 1 || c.IssuedBy[cmtest.DefaultProcedure] != 1 {
		t.Fatalf("CM issued %v by procedure, want one through each", c.IssuedBy)
	}
}

// A lost answer after the signed issue request: CM may have issued, so the
// request is never sent again. The order waits while the gateway searches
// CM for a certificate for the CSR's key and names; one found is
// delivered, and with none found the order fails.
func TestCM_LostAnswer(t *testing.T) {
	tests := []struct {
		name      string
		fault     cmtest.SignedFault
		wantValid bool
	}{
		{"ConnectionCutAfterIssuingIsFoundBySearch", cmtest.SignedFault{N: 1, AfterWrite: true}, true},
		{"503AfterIssuingIsFoundBySearch", cmtest.SignedFault{N: 1, Status: 503, AfterWrite: true}, true},
		{"ConnectionCutBeforeIssuingFailsTheOrder", cmtest.SignedFault{N: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cmtest.New(t, cmtest.Options{})
			name := "lost.example.com"
			e, _, acct, order := cmAuthorized(t, srv, cmIssuer{Extra: "timeout 1s"}, name)

			srv.FaultSigned(tt.fault)
			resp, d := cmFinalize(t, e.G, acct, order, name)
			cmWantProcessing(t, "finalize after a lost answer", resp, d)

			d = cmPollOrder(t, e.G, acct, order.Location, 20*time.Second)
			c := srv.Counts()
			if c.Requests[cmtest.RouteIssue] != 2 || c.Challenges != 1 {
				t.Fatalf("%d issue requests for %d data-to-sign answers: the signed request was sent again", c.Requests[cmtest.RouteIssue], c.Challenges)
			}
			if c.Requests[cmtest.RouteSearch] == 0 {
				t.Fatal("the gateway never searched CM")
			}
			if !tt.wantValid {
				cmWantInvalid(t, d, "serverInternal")
				cmWantCounts(t, srv, 0, 1)
				return
			}
			if d.Status != acme.StatusValid {
				t.Fatalf("order is %q (%s), want valid", d.Status, d.problemType())
			}
			checkCMChain(t, srv, e.G, cmFetchChain(t, e.G, acct, d.Certificate), name)
			cmWantCounts(t, srv, 1, 1)
		})
	}
}

// A restart of Caddy while the outcome of a lost answer is unknown changes
// nothing: the order is stored (storage caddy), still processing
// afterwards, and the client's next poll finds the certificate at CM.
func TestCM_LostAnswerSurvivesCaddyRestart(t *testing.T) {
	srv := cmtest.New(t, cmtest.Options{})
	dns := startDNS(t)
	resp01 := startHTTP01(t)
	rc := newRestartableCaddy(t, fmt.Sprintf(`
		resolvers %s
		http_port %d
		storage caddy
		%s
	`, dns.Addr(), resp01.Port(), cmIssuer{Extra: "timeout 5s"}.block(t, srv)))
	g := rc.start(t)
	e := newACMEEnv(g, dns, resp01)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	const name = "restart.example.com"
	order := acmezAuthorize(t, e, c, acct, name)

	srv.FaultSigned(cmtest.SignedFault{N: 1, AfterWrite: true})
	resp, d := cmFinalize(t, g, acct, order, name)
	cmWantProcessing(t, "finalize", resp, d)

	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping Caddy: %v", err)
	}
	g = rc.start(t)
	// After the restart nothing polls in the background: the client's
	// poll resumes the order.
	d = cmPollOrder(t, g, acct, order.Location, 15*time.Second)
	if d.Status != acme.StatusValid || d.Certificate == "" {
		t.Fatalf("order is %q (certificate %q), want valid", d.Status, d.Certificate)
	}
	checkCMChain(t, srv, g, cmFetchChain(t, g, acct, d.Certificate), name)
	cmWantCounts(t, srv, 1, 1)
}

// CM failing in each way it can: the order ends as the failure warrants,
// and CM's counters show that no certificate was issued twice or behind
// the client's back.
func TestCM_Faults(t *testing.T) {

	// CM unreachable before the request is sent: nothing can have been
	// issued, so the order waits in processing and is issued from its CSR
	// once CM is back.
	t.Run("DownThenBackIssuesOnce", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		proxy := cmDownProxy(t, srv)
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{URL: "https://" + proxy.Addr() + cmtest.BasePath}, "down.example.com")

		resp, d := cmFinalize(t, e.G, acct, order, "down.example.com")
		cmWantProcessing(t, "finalize while CM is down", resp, d)
		if proxy.refused.Load() == 0 {
			t.Fatal("the gateway never tried to reach CM")
		}
		cmWantCounts(t, srv, 0, 0)

		proxy.SetDown(false)
		d = cmPollOrder(t, e.G, acct, order.Location, 20*time.Second)
		if d.Status != acme.StatusValid {
			t.Fatalf("order is %q (%s) after CM came back, want valid", d.Status, d.problemType())
		}
		checkCMChain(t, srv, e.G, cmFetchChain(t, e.G, acct, d.Certificate), "down.example.com")
		cmWantCounts(t, srv, 1, 1)
	})

	// CM unreachable for longer than pending_deadline: the order fails.
	t.Run("DownPastPendingDeadlineFails", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		proxy := cmDownProxy(t, srv)
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{URL: "https://" + proxy.Addr() + cmtest.BasePath, Extra: "pending_deadline 2s"}, "late.example.com")
		resp, d := cmFinalize(t, e.G, acct, order, "late.example.com")
		cmWantProcessing(t, "finalize", resp, d)

		d = cmPollOrder(t, e.G, acct, order.Location, 15*time.Second)
		cmWantInvalid(t, d, "serverInternal")
		cmWantCounts(t, srv, 0, 0)
	})

	// 503s while the gateway searches for a lost answer are retried: the
	// certificate comes through, issued once.
	t.Run("5xxWhileSearchingIsRetried", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{Extra: "timeout 2s"}, "search5xx.example.com")
		srv.FaultSigned(cmtest.SignedFault{N: 1, AfterWrite: true})
		resp, d := cmFinalize(t, e.G, acct, order, "search5xx.example.com")
		cmWantProcessing(t, "finalize", resp, d)

		srv.FailNext(4, 503)
		d = cmPollOrder(t, e.G, acct, order.Location, 20*time.Second)
		if d.Status != acme.StatusValid {
			t.Fatalf("order is %q (%s), want valid", d.Status, d.problemType())
		}
		checkCMChain(t, srv, e.G, cmFetchChain(t, e.G, acct, d.Certificate), "search5xx.example.com")
		cmWantCounts(t, srv, 1, 1)
	})

	t.Run("RejectedCSRIsBadCSR", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{}, "reject.example.com")

		srv.RejectCSR(true)
		_, d := cmFinalize(t, e.G, acct, order, "reject.example.com")
		cmWantInvalid(t, d, "badCSR")
		if !strings.Contains(d.Error.Detail, "refused by the token procedure") {
			t.Fatalf("badCSR detail %q does not carry CM's message", d.Error.Detail)
		}
		cmWantCounts(t, srv, 0, 0)
	})

	// A name the token procedure does not allow reaches the client as
	// rejectedIdentifier.
	t.Run("RefusedNameIsRejectedIdentifier", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
			cmtest.DefaultProcedure: {Domains: []string{"allowed.example"}},
		}})
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{}, "other.example.com")
		_, d := cmFinalize(t, e.G, acct, order, "other.example.com")
		cmWantInvalid(t, d, "rejectedIdentifier")
		cmWantCounts(t, srv, 0, 0)
	})

	// PGWY asks for a caller signature while the gateway is configured for
	// server signing: nothing is signed or issued, and the client sees
	// serverInternal (the configuration is at fault).
	t.Run("SigningModeMismatchIsServerInternal", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{Signing: "server"}, "mismatch.example.com")
		_, d := cmFinalize(t, e.G, acct, order, "mismatch.example.com")
		cmWantInvalid(t, d, "serverInternal")
		if c := cmWantCounts(t, srv, 0, 0); c.Challenges != 1 || c.Requests[cmtest.RouteIssue] != 1 {
			t.Fatalf("%d issue requests for %d data-to-sign answers, want 1 for 1", c.Requests[cmtest.RouteIssue], c.Challenges)
		}
	})

	// An officer certificate CM does not trust: the TLS handshake fails,
	// no request reaches CM's API, and the client sees serverInternal
	// (the configuration is at fault, not the client).
	t.Run("WrongOfficerIsServerInternal", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		certPEM, keyPEM := srv.WrongOfficer(t)
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{CertPEM: certPEM, KeyPEM: keyPEM}, "officer.example.com")

		_, d := cmFinalize(t, e.G, acct, order, "officer.example.com")
		cmWantInvalid(t, d, "serverInternal")
		if strings.Contains(d.Error.Detail, "BEGIN") || strings.Contains(d.Error.Detail, "officer.key") {
			t.Fatalf("problem detail leaks credentials: %q", d.Error.Detail)
		}
		if c := cmWantCounts(t, srv, 0, 0); len(c.Requests) != 0 {
			t.Fatalf("requests reached CM's API: %v", c.Requests)
		}
	})
}

// cmDownProxy is a switch proxy in front of srv, down.
func cmDownProxy(t *testing.T, srv *cmtest.Server) *cmSwitchProxy {
	t.Helper()
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCMSwitchProxy(t, u.Host)
	proxy.SetDown(true)
	return proxy
}
