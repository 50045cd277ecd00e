package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyacmegw/caddyacmegw/internal/testca"
)

// TestConsole_OfficerNamedByClientCertificate serves the console with no
// authentication handler, on a server that requires and verifies client
// certificates: the configuration loads, and the certificate's subject
// names the officer.
func TestConsole_OfficerNamedByClientCertificate(t *testing.T) {
	ca, err := testca.New("officers' CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "officers-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	storageDir := t.TempDir()
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	acme_gateway_console
	acme_gateway {
		storage memory
	}
}
`, globalOptions(t, "off", storageDir, ""), port, caFile)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	// Not loadCaddyfile: its readiness check has no client certificate.
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	g := withRoots(t, &gateway{Port: port}, storageDir)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.Sign(&x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "Frank Officer"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	client := g.HTTPClient()
	roots := client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{{
		Certificate: [][]byte{chain[0].Raw}, PrivateKey: key, Leaf: chain[0],
	}}
	var resp *http.Response
	for range 50 { // until Caddy has its site certificate
		if resp, err = client.Get(fmt.Sprintf("https://localhost:%d/console/", port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<strong id="officer">Frank Officer</strong>`) {
		t.Fatalf("with a client certificate: %d\n%s", resp.StatusCode, body)
	}

	// The server is ready: a connection without a certificate is refused
	// by a TLS alert about the certificate, not by anything else.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", fmt.Sprintf("localhost:%d", port),
		&tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err == nil {
		defer conn.Close()
		// In TLS 1.3 the server refuses after the client's last flight,
		// which the client reads.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	if code, ok := tlsAlert(err); !ok || (code != alertBadCertificate && code != alertCertificateRequired) {
		t.Fatalf("without a client certificate: %v; want the server's alert bad_certificate or certificate_required", err)
	}
}

// TLS alerts about a client's certificate (RFC 8446, section 6).
const (
	alertBadCertificate      = 42
	alertCertificateRequired = 116
)

// tlsAlert is the alert the peer sent, which crypto/tls reports as a
// "remote error" whose Err is its (unexported) alert, a uint8.
func tlsAlert(err error) (uint8, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return uint8(v.Uint()), true
}
