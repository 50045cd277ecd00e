package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// twoInstances is one gateway served by two Caddy processes that share a
// PostgreSQL database, behind a round-robin reverse proxy (the in-process
// Caddy) whose URL is the gateways' base_url. All three keep Caddy's own
// data in one file_system storage, so that they share the local CA: the
// certificates either instance issues, and every TLS certificate, chain
// to one root.
type twoInstances struct {
	// Front is the proxy: Directory is the gateway's public directory.
	Front *acmeEnv
	// BaseURL is the gateways' base_url.
	BaseURL string
	// Instances are the gateways' own base URLs (https://localhost:<port>/acme).
	Instances [2]string
	// DSN is the shared database.
	DSN string
	// HTTPPort is where the gateways look for http-01 responses.
	HTTPPort int
	// Admins are the instances' admin endpoints (host:port).
	Admins [2]string
}

// startTwoInstances starts the database, the two gateway processes and the
// proxy in front of them.
func startTwoInstances(t *testing.T) *twoInstances {
	t.Helper()
	return startTwoInstancesWith(t, "")
}

// startTwoInstancesWith is startTwoInstances with more subdirectives for
// both gateways.
func startTwoInstancesWith(t *testing.T, more string) *twoInstances {
	t.Helper()
	dsn := pgtest.Start(t)
	bin := buildCaddy(t)
	dns := startDNS(t)
	storageDir := filepath.Join(t.TempDir(), "storage")
	frontPort, httpPort := freePort(t), freePort(t)
	env := &twoInstances{
		BaseURL:  fmt.Sprintf("https://localhost:%d/acme", frontPort),
		DSN:      dsn,
		HTTPPort: httpPort,
	}
	var upstreams []string
	for i := range env.Instances {
		port := freePort(t)
		env.Admins[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
		storage postgres "%s"
		base_url %s
		resolvers %s
		http_port %d
		deny_validation_to none
		%s
	}
}
`, globalOptions(t, env.Admins[i], storageDir, ""), port, dsn, env.BaseURL, dns.Addr(), httpPort, more)
		env.Instances[i] = fmt.Sprintf("https://localhost:%d/acme", port)
		// One after the other: the first makes the local CA, the second
		// finds it in the shared storage.
		runCaddyProcess(t, bin, caddyfile, env.Instances[i]+"/directory")
		upstreams = append(upstreams, fmt.Sprintf("https://localhost:%d", port))
	}
	front := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	reverse_proxy %s {
		lb_policy round_robin
		header_down X-Test-Upstream {http.reverse_proxy.upstream.hostport}
		transport http {
			tls_insecure_skip_verify
		}
	}
}
`, globalOptions(t, "off", storageDir, ""), frontPort, strings.Join(upstreams, " "))
	g := loadCaddyfile(t, front, frontPort, "", "/acme", storageDir)
	env.Front = newACMEEnv(g, dns, nil)
	return env
}

// direct turns a URL under base_url into the same resource at instance i.
func (e *twoInstances) direct(i int, u string) string {
	rest, ok := strings.CutPrefix(u, e.BaseURL)
	if !ok {
		panic(fmt.Sprintf("%q is not under base_url %q", u, e.BaseURL))
	}
	return e.Instances[i] + rest
}

// Two gateway instances on one database behind one URL: the proxy spreads
// requests over both, and acmez, lego and certbot each complete issuance
// through it, with certificates that chain to the one local CA and are
// recorded in the shared database.
func TestMultiInstance_ClientsIssueThroughRoundRobin(t *testing.T) {
	e := startTwoInstances(t)
	g := e.Front.G
	hc := g.HTTPClient()

	// Round robin: consecutive requests reach both instances.
	seen := map[string]bool{}
	for range 4 {
		resp, err := hc.Head(e.BaseURL + "/new-nonce")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen[resp.Header.Get("X-Test-Upstream")] = true
	}
	if len(seen) != 2 {
		t.Fatalf("four requests through the proxy reached %v, want both instances", seen)
	}

	var serials []string
	t.Run("acmez", func(t *testing.T) {
		c, presented := acmezClient(e.Front, acme.ChallengeTypeDNS01)
		acct := acmezAccount(t, c)
		if !strings.HasPrefix(acct.Location, e.BaseURL+"/account/") {
			t.Fatalf("account URL %q is not under base_url %s", acct.Location, e.BaseURL)
		}
		names := []string{"mi-acmez1.example.com", "mi-acmez2.example.com"}
		chain, _ := acmezObtain(t, c, acct, names...)
		leaf := checkChain(t, g, chain, names...)
		serials = append(serials, leaf.SerialNumber.Text(16))
		if n := presented.Load(); n != 2 {
			t.Fatalf("%d dns-01 challenges presented, want 2", n)
		}
	})
	t.Run("lego", func(t *testing.T) {
		client, user, _ := legoRegister(t, e.Front, "dns-01")
		if !strings.HasPrefix(user.reg.Location, e.BaseURL+"/account/") {
			t.Fatalf("account URL %q is not under base_url %s", user.reg.Location, e.BaseURL)
		}
		res := legoObtain(t, client, "mi-lego.example.com")
		leaf := checkChain(t, g, parseChain(t, res.Certificate), "mi-lego.example.com")
		serials = append(serials, leaf.SerialNumber.Text(16))
	})
	t.Run("certbot", func(t *testing.T) {
		bin := findCertbot(t)
		cb := newCertbot(t, bin, g)
		const name = "mi-certbot.example.com"
		cb.mustRun(t, "certonly", certbotStandalone(e.HTTPPort, name)...)
		leaf := cb.checkLiveCert(t, g, name, name)
		serials = append(serials, leaf.SerialNumber.Text(16))
	})

	db := pgConnect(t, e.DSN)
	var stored []string
	rows, err := db.Query(dbCtx(t), "SELECT serial FROM certificates WHERE serial = ANY($1) ORDER BY serial", serials)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(serials)
	if !slices.Equal(stored, serials) {
		t.Fatalf("database holds certificates %v of the %v issued", stored, serials)
	}
}

// A nonce is shared by the instances and single-use across them: issued by
// A, it is good once at B, and refused as badNonce when replayed at A. The
// instances are reached at their own ports, while the JWS names the
// resource by its base_url, as a client behind the proxy does.
func TestMultiInstance_NonceFromOneInstanceWorksOnceAtTheOther(t *testing.T) {
	e := startTwoInstances(t)
	hc := e.Front.G.HTTPClient()

	nonce, err := freshNonce(hc, e.Instances[0]+"/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"termsOfServiceAgreed":true,"contact":["mailto:ops@example.com"]}`)
	body := signJWS(t, newKey(t), "", nonce, e.BaseURL+"/new-account", payload)

	atB, err := postBody(t.Context(), hc, e.Instances[1]+"/new-account", body)
	if err != nil {
		t.Fatal(err)
	}
	if atB.Status != http.StatusCreated || !strings.HasPrefix(atB.Header.Get("Location"), e.BaseURL+"/account/") {
		t.Fatalf("new account at B with A's nonce: HTTP %d, Location %q\n%s", atB.Status, atB.Header.Get("Location"), atB.Body)
	}

	replay, err := postBody(t.Context(), hc, e.Instances[0]+"/new-account", body)
	if err != nil {
		t.Fatal(err)
	}
	if replay.Status != http.StatusBadRequest || problemType(replay.Body) != "urn:ietf:params:acme:error:badNonce" {
		t.Fatalf("replay at A: HTTP %d %s, want 400 badNonce", replay.Status, replay.Body)
	}
	// And at B, which redeemed it.
	replay, err = postBody(t.Context(), hc, e.Instances[1]+"/new-account", body)
	if err != nil {
		t.Fatal(err)
	}
	if replay.Status != http.StatusBadRequest || problemType(replay.Body) != "urn:ietf:params:acme:error:badNonce" {
		t.Fatalf("replay at B: HTTP %d %s, want 400 badNonce", replay.Status, replay.Body)
	}
}

// Finalize requests for one ready order, sent to both instances at the
// same moment, issue one certificate: one request wins with the valid
// order, the other is refused as orderNotReady, and the database holds
// one certificate for the order, the one the order names. Several rounds,
// so that the requests do meet in the database.
func TestMultiInstance_ConcurrentFinalizeIssuesOnce(t *testing.T) {
	e := startTwoInstances(t)
	c, _ := acmezClient(e.Front, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	db := pgConnect(t, e.DSN)
	hc := e.Front.G.HTTPClient()

	const rounds = 5
	for round := range rounds {
		name := fmt.Sprintf("race%d.example.com", round)
		order := readyOrderDNS01(t, e.Front, c, acct, name)
		csr, err := acmez.NewCSR(newKey(t), []string{name})
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]string{"csr": base64.RawURLEncoding.EncodeToString(csr.Raw)})

		// Each request with its nonce from its own instance, signed
		// before the start so that they leave together.
		var bodies [2][]byte
		for i := range bodies {
			nonce, err := freshNonce(hc, e.Instances[i]+"/new-nonce")
			if err != nil {
				t.Fatal(err)
			}
			bodies[i] = signJWS(t, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, nonce, order.Finalize, payload)
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			answers [2]rawResponse
			errs    [2]error
		)
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				answers[i], errs[i] = postBody(ctx, hc, e.direct(i, order.Finalize), bodies[i])
			}()
		}
		close(start)
		wg.Wait()

		var won []int
		for i := range answers {
			if errs[i] != nil {
				t.Fatalf("round %d: finalize at instance %d: %v", round, i, errs[i])
			}
			switch a := answers[i]; {
			case a.Status == http.StatusOK:
				won = append(won, i)
			case a.Status == http.StatusForbidden && problemType(a.Body) == "urn:ietf:params:acme:error:orderNotReady":
			default:
				t.Fatalf("round %d: finalize at instance %d: HTTP %d %s, want 200 or 403 orderNotReady", round, i, a.Status, a.Body)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: finalize succeeded at instances %v, want exactly one", round, won)
		}
		t.Logf("round %d: instance %d issued; the other answered %s", round, won[0], answers[1-won[0]].Body)
		var finalized struct {
			Status      string `json:"status"`
			Certificate string `json:"certificate"`
		}
		if err := json.Unmarshal(answers[won[0]].Body, &finalized); err != nil {
			t.Fatal(err)
		}
		if finalized.Status != acme.StatusValid || !strings.HasPrefix(finalized.Certificate, e.BaseURL+"/cert/") {
			t.Fatalf("round %d: the winner answered status %q, certificate %q", round, finalized.Status, finalized.Certificate)
		}

		// Through the proxy, the order names that certificate.
		got, err := c.GetOrder(t.Context(), acct, order)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != acme.StatusValid || got.Certificate != finalized.Certificate {
			t.Fatalf("round %d: order is %q with certificate %q, want valid with %q", round, got.Status, got.Certificate, finalized.Certificate)
		}
		var serials []string
		rows, err := db.Query(dbCtx(t), "SELECT serial FROM certificates WHERE order_id = $1", lastSegment(order.Location))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			serials = append(serials, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(serials) != 1 || serials[0] != lastSegment(finalized.Certificate) {
			t.Fatalf("round %d: database holds certificates %v for the order, want only %s", round, serials, lastSegment(finalized.Certificate))
		}
		chain, err := c.GetCertificateChain(t.Context(), acct, finalized.Certificate)
		if err != nil || len(chain) == 0 {
			t.Fatalf("round %d: downloading the certificate: %d chains, %v", round, len(chain), err)
		}
		checkChain(t, e.Front.G, parseChain(t, chain[0].ChainPEM), name)
	}
}

// readyOrderDNS01 makes an order for names and completes its
// authorizations through dns-01, without finalizing it.
func readyOrderDNS01(t testing.TB, e *acmeEnv, c *acmez.Client, acct acme.Account, names ...string) acme.Order {
	t.Helper()
	ctx := t.Context()
	order, err := c.NewOrder(ctx, acct, acme.Order{Identifiers: dnsIdentifiers(names)})
	if err != nil {
		t.Fatal(err)
	}
	if err := authorizeDNS01(ctx, e, c, acct, order); err != nil {
		t.Fatal(err)
	}
	order, err = c.GetOrder(ctx, acct, order)
	if err != nil || order.Status != acme.StatusReady {
		t.Fatalf("order after authorizing: status %q, %v", order.Status, err)
	}
	return order
}

// authorizeDNS01 validates every pending authorization of order through
// dns-01 on the test DNS server of e. It returns errors rather than
// reporting them, for the goroutines of load tests.
func authorizeDNS01(ctx context.Context, e *acmeEnv, c *acmez.Client, acct acme.Account, order acme.Order) error {
	for _, u := range order.Authorizations {
		authz, err := c.GetAuthorization(ctx, acct, u)
		if err != nil {
			return err
		}
		if authz.Status == acme.StatusValid {
			continue
		}
		i := slices.IndexFunc(authz.Challenges, func(ch acme.Challenge) bool { return ch.Type == acme.ChallengeTypeDNS01 })
		if i < 0 {
			return fmt.Errorf("authorization %s offers no dns-01", u)
		}
		chal := authz.Challenges[i]
		e.TXT.Add(chal.DNS01TXTRecordName(), chal.DNS01KeyAuthorization())
		// The challenge of an authorization left processing (the
		// database went away) is queued again when polled.
		if chal.Status == acme.StatusPending {
			if _, err := c.InitiateChallenge(ctx, acct, chal); err != nil {
				e.TXT.Remove(chal.DNS01TXTRecordName(), chal.DNS01KeyAuthorization())
				return err
			}
		}
		authz, err = c.PollAuthorization(ctx, acct, authz)
		e.TXT.Remove(chal.DNS01TXTRecordName(), chal.DNS01KeyAuthorization())
		if err != nil {
			return err
		}
		if authz.Status != acme.StatusValid {
			return fmt.Errorf("authorization %s is %s", u, authz.Status)
		}
	}
	return nil
}

// leafSerial is the serial, in the gateway's hex spelling, of a chain's leaf.
func leafSerial(chainPEM []byte) (string, error) {
	block, _ := pem.Decode(chainPEM)
	if block == nil {
		return "", errors.New("no certificate in chain")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	return leaf.SerialNumber.Text(16), nil
}
