package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// renewalClientCaddyfile is a Caddy that gets its certificate for name from
// the gateway g, checking for renewal every second, and serves
// "ready" over plain HTTP on readyPort once it runs.
//
// certmagic (v0.25) fetches renewal information right after issuance, then
// on each tick of its maintenance loop (renew_interval, RenewCheckInterval)
// once the answer's Retry-After has passed; when the window changed it
// picks a time in it and renews at once if that time is less than one
// interval away. With renew_interval 1s and the gateway's
// renewal_info_retry_after 1s, a moved window is acted on within seconds.
func renewalClientCaddyfile(g *gateway, storageDir, name string, httpPort, httpsPort, readyPort int) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	servers {
		protocols h1 h2
	}
	http_port %d
	https_port %d
	storage file_system %s
	acme_ca %s
	acme_ca_root %s
	renew_interval 1s
}
%s {
	respond "renewal client"
}
http://127.0.0.1:%d {
	respond "ready"
}
`, httpPort, httpsPort, storageDir, g.Directory, g.RootFile, name, readyPort)
}

// servedLeaf polls the certificate that addr serves for name, verified
// against the gateway's roots, until its serial (lower-case hex, as the
// gateway stores it) is not one of skip.
func servedLeaf(t *testing.T, g *gateway, addr, name string, deadline time.Duration, skip ...string) *x509.Certificate {
	t.Helper()
	var last error
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: name, RootCAs: g.Roots})
		if err != nil {
			last = err
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !slices.Contains(skip, leaf.SerialNumber.Text(16)) {
			return leaf
		}
		last = fmt.Errorf("still serving %x", leaf.SerialNumber)
	}
	t.Fatalf("%s: no new certificate for %s within %s: %v", addr, name, deadline, last)
	return nil
}

// renewalInfo is the gateway's renewal information for leaf, as acmez
// fetches it.
func renewalInfo(t *testing.T, g *gateway, leaf *x509.Certificate) acme.RenewalInfo {
	t.Helper()
	c := &acme.Client{Directory: g.Directory, HTTPClient: g.HTTPClient()}
	info, err := c.GetRenewalInfo(t.Context(), leaf)
	if err != nil {
		t.Fatalf("renewal info of %x: %v", leaf.SerialNumber, err)
	}
	return info
}

// A second Caddy, using the gateway as its CA, learns from renewal
// information that an officer moved its certificate's window into the past,
// and renews at once; the renewed certificate keeps its own window, and the
// move is in the audit trail. (Caddy 2.11.9 sends no "replaces": certmagic
// sets it only for its own ACMEIssuer type, and Caddy's issuer wraps it;
// lego_test.go and acmez_test.go check "replaces".)
func TestCaddyClient_RenewsEarlyWhenOfficerMovesWindow(t *testing.T) {
	dns := startDNS(t)
	clientHTTP, clientHTTPS, ready := freePort(t), freePort(t), freePort(t)
	// http-01 validation reaches the client Caddy's HTTP port.
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		renewal_info_retry_after 1s
	`, dns.Addr(), clientHTTP))

	const name = "renew.example.com"
	client := renewalClientCaddyfile(g, filepath.Join(t.TempDir(), "client"), name, clientHTTP, clientHTTPS, ready)
	proc := runCaddyProcess(t, buildCaddy(t), client, fmt.Sprintf("http://127.0.0.1:%d/", ready))
	addr := fmt.Sprintf("127.0.0.1:%d", clientHTTPS)
	first := servedLeaf(t, g, addr, name, 60*time.Second)
	firstSerial := first.SerialNumber.Text(16)
	if own := renewalInfo(t, g, first); !own.SuggestedWindow.Start.After(time.Now()) {
		t.Fatalf("a fresh certificate's window starts %s, want ahead", own.SuggestedWindow.Start)
	}

	// Its own window lies ahead: once the client has refreshed its renewal
	// information (its log says so), it still serves the first certificate.
	const refreshed = "updated and stored ACME renewal information"
	for end := time.Now().Add(30 * time.Second); !strings.Contains(proc.output(), refreshed); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the client did not refresh its renewal information within 30s\n%s", proc.output())
		}
	}
	if again := servedLeaf(t, g, addr, name, 10*time.Second); !again.Equal(first) {
		t.Fatalf("the client renewed %s (now %x) before any window moved\n%s", firstSerial, again.SerialNumber, proc.output())
	}

	admin := g.admin()
	var rule struct {
		CreatedAt time.Time `json:"created_at"`
	}
	admin.mustDo(t, http.MethodPost, "/renewal-rules", map[string]any{
		"scope": "certificate", "value": firstSerial, "explanation_url": "https://example.com/incident",
	}, http.StatusCreated, &rule)
	if moved := renewalInfo(t, g, first); moved.ExplanationURL != "https://example.com/incident" || moved.SuggestedWindow.End.After(time.Now()) {
		t.Fatalf("renewal info after the move: %+v", moved)
	}

	second := servedLeaf(t, g, addr, name, 60*time.Second, firstSerial)
	var renewed struct {
		IssuedAt time.Time `json:"issued_at"`
	}
	admin.mustDo(t, http.MethodGet, "/certificates/"+second.SerialNumber.Text(16), nil, http.StatusOK, &renewed)
	if !renewed.IssuedAt.After(rule.CreatedAt) {
		t.Errorf("renewed certificate issued %s, before the rule made %s", renewed.IssuedAt, rule.CreatedAt)
	}
	// The renewed certificate was issued after the rule: its window is its own.
	if own := renewalInfo(t, g, second); own.ExplanationURL != "" || !own.SuggestedWindow.Start.After(time.Now()) {
		t.Errorf("renewed certificate's renewal info: %+v, want its own window ahead", own)
	}
	trail := admin.audit(t)
	move := trail[len(trail)-1]
	if move.Action != "renewal.move" || move.Target != "certificate:"+firstSerial || move.Actor != officerName ||
		!strings.Contains(string(move.Detail), "https://example.com/incident") {
		t.Errorf("audit entry of the move: %+v", move)
	}
}
