package integration

import (
	"fmt"
	"strings"
	"testing"
)

// certbot 2.1 as Debian ships it: obtain with its standalone http-01
// server, renew the lineage, revoke with the account key, and see the
// revocation stick.
func TestCertbot_ObtainsRenewsRevokesHTTP01(t *testing.T) {
	bin := findCertbot(t)
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
	`, dns.Addr(), httpPort))
	cb := newCertbot(t, bin, g)
	const name = "a.example.com"
	standalone := certbotStandalone(httpPort, name)

	cb.mustRun(t, "certonly", standalone...)
	first := cb.checkLiveCert(t, g, name, name)

	// renew reads the authenticator, port and server back from the
	// lineage's renewal configuration.
	cb.mustRun(t, "renew", "--cert-name", name, "--force-renewal")
	second := cb.checkLiveCert(t, g, name, name)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("renewal kept serial %x", first.SerialNumber)
	}

	revoke := []string{"--cert-path", cb.liveFile(name, "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke"}
	cb.mustRun(t, "revoke", revoke...)

	// The gateway must remember the revocation: asking again is
	// alreadyRevoked (RFC 8555 §7.6), not a second success. certbot 2.1 on
	// Python 3.11 reports any ACME error on revoke as "AttributeError:
	// can't set attribute" (its error path trips over josepy's immutable
	// exception), so the problem type is looked for in its log too.
	out, err := cb.run(t, "revoke", revoke...)
	log := cb.log()
	if !errExitCode(err) {
		t.Fatalf("second revoke: err %v, want certbot to fail\n%s\n--- log ---\n%s", err, out, log)
	}
	const problem = "urn:ietf:params:acme:error:alreadyRevoked"
	if !strings.Contains(out, problem) && !strings.Contains(log, problem) {
		t.Fatalf("second revoke failed without %s:\n%s\n--- log ---\n%s", problem, out, log)
	}
}

// A wildcard and its base domain in one order: two dns-01 challenges
// whose TXT records share one name, published by certbot's manual hooks.
func TestCertbot_WildcardThroughDNS01ManualHooks(t *testing.T) {
	bin := findCertbot(t)
	dns := startDNS(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
	`, dns.Addr()))
	hooks := startTXTHookServer(t, dns)
	hook := hooks.writeHook(t)
	cb := newCertbot(t, bin, g)

	cb.mustRun(t, "certonly",
		"--manual",
		"--preferred-challenges", "dns",
		"--manual-auth-hook", hook+" add",
		"--manual-cleanup-hook", hook+" del",
		"-d", "*.wild.example.com",
		"-d", "wild.example.com",
	)
	cb.checkLiveCert(t, g, "wild.example.com", "*.wild.example.com", "wild.example.com")

	adds, dels, left := hooks.counts()
	if adds != 2 || dels != 2 || left != 0 {
		t.Fatalf("hooks: %d adds, %d deletes, %d names left; want 2, 2, 0", adds, dels, left)
	}
}
