package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
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
	if resp, err := g.HTTPClient().Get(fmt.Sprintf("https://localhost:%d/console/", port)); err == nil {
		resp.Body.Close()
		t.Fatalf("without a client certificate: %d, want no connection", resp.StatusCode)
	}
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
}
