package integration

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cmissuer/cmtest"
)

// The tests here issue through the `cm` issuer against cmtest, the strict
// Certificate Manager simulator: certbot end to end, an approval step that
// survives a restart of Caddy, and CM failing in the ways it can. Every
// test checks CM's own counters, so that a certificate issued twice, or
// issued and lost, shows.

// certbot obtains, renews and revokes through CM: the certificates chain
// to CM's issuing root, and CM records the revocation with certbot's
// reason.
func TestCM_CertbotObtainsRenewsRevokes(t *testing.T) {
	bin := findCertbot(t)
	srv := cmtest.New(t, cmtest.Options{})
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		%s
	`, dns.Addr(), httpPort, cmIssuer{}.block(t, srv)))
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
	cmWantCounts(t, srv, 2, 2)

	cb.mustRun(t, "revoke", "--cert-path", cb.liveFile(name, "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
	if reason, revoked := srv.Revocation(second.SerialNumber.Text(16)); !revoked || reason != 4 {
		t.Fatalf("CM has the renewed certificate revoked=%v with reason %d, want revoked with 4 (superseded)", revoked, reason)
	}
	if _, revoked := srv.Revocation(first.SerialNumber.Text(16)); revoked {
		t.Fatal("CM revoked the first certificate too")
	}
	if c := srv.Counts(); c.Revoked != 1 || c.Requests[cmRevokePOST] != 1 {
		t.Fatalf("CM revoked %d from %d requests, want 1 from 1", c.Revoked, c.Requests[cmRevokePOST])
	}
}

const cmApprovalProcedure = "ACME with approval"

func cmApprovalServer(t *testing.T) *cmtest.Server {
	return cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
		cmApprovalProcedure: {Approval: true},
	}})
}

// An order waits in processing, with Retry-After, while CM holds the
// request for an officer's approval; the gateway keeps asking CM, and once
// approved, acmez, which only polls the order, gets the certificate.
func TestCM_ApprovalStepKeepsOrderProcessingUntilApproved(t *testing.T) {
	srv := cmApprovalServer(t)
	e := startCMEnv(t, srv, cmIssuer{Procedure: cmApprovalProcedure})
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	const name = "approve.example.com"

	type result struct {
		chain []byte
		err   error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	go func() {
		certs, err := c.ObtainCertificateForSANs(ctx, acct, newKey(t), []string{name})
		if err == nil && len(certs) == 0 {
			err = fmt.Errorf("no chain")
		}
		var chain []byte
		if err == nil {
			chain = certs[0].ChainPEM
		}
		done <- result{chain, err}
	}()

	var ids []string
	cmWaitFor(t, "the request to wait at CM", 15*time.Second, func() bool {
		ids = srv.PendingIDs()
		return len(ids) > 0
	})
	orders := listOrders(t, e.G, acct)
	if len(ids) != 1 || len(orders) != 1 {
		t.Fatalf("%d requests pending at CM for %d orders, want 1 for 1", len(ids), len(orders))
	}
	resp, d := cmReadOrder(t, e.G, acct, orders[0])
	cmWantProcessing(t, "before approval", resp, d)
	// The gateway asks CM in the background, and nothing changes while
	// CM waits.
	cmWaitFor(t, "the gateway to poll CM", 10*time.Second, func() bool { return srv.Counts().Requests[cmDetailsGET] >= 2 })
	resp, d = cmReadOrder(t, e.G, acct, orders[0])
	cmWantProcessing(t, "while CM waits", resp, d)
	cmWantCounts(t, srv, 0, 1)

	if err := srv.Approve(ids[0]); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("acmez did not finish within 20s of the approval")
	}
	if r.err != nil {
		t.Fatalf("acmez: %v", r.err)
	}
	checkCMChain(t, srv, e.G, parseChain(t, r.chain), name)
	if c := cmWantCounts(t, srv, 1, 1); c.Pending != 1 {
		t.Fatalf("CM held %d requests, want 1", c.Pending)
	}
}

// A restart of Caddy while CM holds the request changes nothing: the order
// is stored (storage caddy), still processing afterwards, and the client's
// next poll after the approval finds it valid, issued once.
func TestCM_ApprovalSurvivesCaddyRestart(t *testing.T) {
	srv := cmApprovalServer(t)
	dns := startDNS(t)
	resp01 := startHTTP01(t)
	rc := newRestartableCaddy(t, fmt.Sprintf(`
		resolvers %s
		http_port %d
		storage caddy
		%s
	`, dns.Addr(), resp01.Port(), cmIssuer{Procedure: cmApprovalProcedure}.block(t, srv)))
	g := rc.start(t)
	e := newACMEEnv(g, dns, resp01)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	const name = "restart.example.com"
	order := acmezAuthorize(t, e, c, acct, name)

	resp, d := cmFinalize(t, g, acct, order, name)
	cmWantProcessing(t, "finalize", resp, d)
	ids := srv.PendingIDs()
	if len(ids) != 1 {
		t.Fatalf("%d requests pending at CM, want 1", len(ids))
	}

	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping Caddy: %v", err)
	}
	g = rc.start(t)
	resp, d = cmReadOrder(t, g, acct, order.Location)
	cmWantProcessing(t, "after the restart", resp, d)

	if err := srv.Approve(ids[0]); err != nil {
		t.Fatal(err)
	}
	// After the restart nothing polls in the background: the client's
	// poll resumes the order.
	d = cmPollOrder(t, g, acct, order.Location, 15*time.Second)
	if d.Status != acme.StatusValid || d.Certificate == "" {
		t.Fatalf("order is %q (certificate %q), want valid", d.Status, d.Certificate)
	}
	checkCMChain(t, srv, g, cmFetchChain(t, g, acct, d.Certificate), name)
	cmWantCounts(t, srv, 1, 1)
}

// An approval that does not come within pending_deadline fails the order.
func TestCM_PendingDeadlineFailsOrder(t *testing.T) {
	srv := cmApprovalServer(t)
	e, _, acct, order := cmAuthorized(t, srv, cmIssuer{Procedure: cmApprovalProcedure, Extra: "pending_deadline 2s"}, "late.example.com")
	resp, d := cmFinalize(t, e.G, acct, order, "late.example.com")
	cmWantProcessing(t, "finalize", resp, d)

	d = cmPollOrder(t, e.G, acct, order.Location, 10*time.Second)
	if d.Status != acme.StatusInvalid || d.problemType() != "urn:ietf:params:acme:error:serverInternal" {
		t.Fatalf("order is %q with problem %q, want invalid with serverInternal", d.Status, d.problemType())
	}
	cmWantCounts(t, srv, 0, 1)
}

// CM failing in each way it can: the order ends as the failure warrants,
// and CM's counters show that no certificate was issued twice or behind
// the client's back.
func TestCM_Faults(t *testing.T) {
	const bad = "urn:ietf:params:acme:error:"

	// CM unreachable before the request is sent: nothing can have been
	// issued, so the order waits in processing and is issued from its CSR
	// once CM is back.
	t.Run("DownThenBackIssuesOnce", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		u, err := url.Parse(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		proxy := startCMSwitchProxy(t, u.Host)
		proxy.SetDown(true)
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

	// CM slower than the issuer's timeout: the request was sent and may
	// be signed, so it is not sent again and the order fails. CM does
	// sign it when it gets to it: that certificate is an orphan the
	// gateway never learns of (a known limitation: nothing reconciles an
	// ambiguous request with CM), and the client's next order is a
	// second certificate for the same names.
	t.Run("SlowerThanTimeoutFailsWithoutRetry", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, c, acct, order := cmAuthorized(t, srv, cmIssuer{Extra: "timeout 1s"}, "slow.example.com")

		srv.SetLatency(2 * time.Second)
		start := time.Now()
		_, d := cmFinalize(t, e.G, acct, order, "slow.example.com")
		if d.Status != acme.StatusInvalid || d.problemType() != bad+"serverInternal" {
			t.Fatalf("order is %q with problem %q, want invalid with serverInternal", d.Status, d.problemType())
		}
		if took := time.Since(start); took > 1900*time.Millisecond {
			t.Fatalf("finalize took %v: the 1s timeout did not bound the call", took)
		}
		// CM answers late, to a gateway that no longer listens.
		cmWaitFor(t, "CM to sign the late request", 5*time.Second, func() bool { return srv.Counts().Issued == 1 })
		cmWantCounts(t, srv, 1, 1)

		srv.SetLatency(0)
		chain, _ := acmezObtain(t, c, acct, "slow.example.com")
		checkCMChain(t, srv, e.G, chain, "slow.example.com")
		cmWantCounts(t, srv, 2, 2)
	})

	// A 503 to the issue POST: CM saw the request and may have acted on
	// it, so the gateway does not repeat it (cmissuer marks it
	// ambiguous) and the order fails; a new order is issued once.
	t.Run("5xxOnIssueFailsWithoutRetry", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, c, acct, order := cmAuthorized(t, srv, cmIssuer{}, "fivexx.example.com")

		srv.FailNext(1, 503)
		_, d := cmFinalize(t, e.G, acct, order, "fivexx.example.com")
		if d.Status != acme.StatusInvalid || d.problemType() != bad+"serverInternal" {
			t.Fatalf("order is %q with problem %q, want invalid with serverInternal", d.Status, d.problemType())
		}
		cmWantCounts(t, srv, 0, 1)

		chain, _ := acmezObtain(t, c, acct, "fivexx.example.com")
		checkCMChain(t, srv, e.G, chain, "fivexx.example.com")
		cmWantCounts(t, srv, 1, 2)
	})

	// 503s while the gateway polls an approved request are retried: the
	// certificate comes through, issued once.
	t.Run("5xxWhilePollingIsRetried", func(t *testing.T) {
		srv := cmApprovalServer(t)
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{Procedure: cmApprovalProcedure}, "poll5xx.example.com")
		resp, d := cmFinalize(t, e.G, acct, order, "poll5xx.example.com")
		cmWantProcessing(t, "finalize", resp, d)
		ids := srv.PendingIDs()
		if len(ids) != 1 {
			t.Fatalf("%d requests pending at CM, want 1", len(ids))
		}

		srv.FailNext(4, 503)
		if err := srv.Approve(ids[0]); err != nil {
			t.Fatal(err)
		}
		d = cmPollOrder(t, e.G, acct, order.Location, 20*time.Second)
		if d.Status != acme.StatusValid {
			t.Fatalf("order is %q (%s), want valid", d.Status, d.problemType())
		}
		checkCMChain(t, srv, e.G, cmFetchChain(t, e.G, acct, d.Certificate), "poll5xx.example.com")
		cmWantCounts(t, srv, 1, 1)
	})

	t.Run("RejectedCSRIsBadCSR", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{}, "reject.example.com")

		srv.RejectCSR(true)
		_, d := cmFinalize(t, e.G, acct, order, "reject.example.com")
		if d.Status != acme.StatusInvalid || d.problemType() != bad+"badCSR" {
			t.Fatalf("order is %q with problem %q, want invalid with badCSR", d.Status, d.problemType())
		}
		if !strings.Contains(d.Error.Detail, "refused by the token procedure") {
			t.Fatalf("badCSR detail %q does not carry CM's message", d.Error.Detail)
		}
		cmWantCounts(t, srv, 0, 1)
	})

	// An officer certificate CM does not trust: the TLS handshake fails,
	// no request reaches CM's API, and the client sees serverInternal
	// (the configuration is at fault, not the client).
	t.Run("WrongOfficerIsServerInternal", func(t *testing.T) {
		srv := cmtest.New(t, cmtest.Options{})
		certPEM, keyPEM := srv.WrongOfficer(t)
		e, _, acct, order := cmAuthorized(t, srv, cmIssuer{CertPEM: certPEM, KeyPEM: keyPEM}, "officer.example.com")

		_, d := cmFinalize(t, e.G, acct, order, "officer.example.com")
		if d.Status != acme.StatusInvalid || d.problemType() != bad+"serverInternal" {
			t.Fatalf("order is %q with problem %q, want invalid with serverInternal", d.Status, d.problemType())
		}
		if strings.Contains(d.Error.Detail, "BEGIN") || strings.Contains(d.Error.Detail, "officer.key") {
			t.Fatalf("problem detail leaks credentials: %q", d.Error.Detail)
		}
		if c := cmWantCounts(t, srv, 0, 0); len(c.Requests) != 0 {
			t.Fatalf("requests reached CM's API: %v", c.Requests)
		}
	})
}
