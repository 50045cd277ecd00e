package cmtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/cmissuer/cmtest"
)

// client is an HTTP client that trusts s and presents certPEM/keyPEM (none
// when certPEM is nil).
func client(t *testing.T, s *cmtest.Server, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.RootsPEM())
	tc := &tls.Config{RootCAs: roots}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func csrBase64(t *testing.T, tamper bool) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.test"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		der[len(der)-1] ^= 0xff // the signature no longer verifies
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestServer_IsStrict(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	certPEM, keyPEM := s.Officer(t)
	good := client(t, s, certPEM, keyPEM)
	tests := []struct {
		name        string
		client      *http.Client
		contentType string
		body        string
		want        int // 0: the handshake fails
	}{
		{"valid request", good, "application/json", `{"procedure":"ACME TLS Server","pkcs10":"` + csrBase64(t, false) + `"}`, 201},
		{"unknown JSON field", good, "application/json", `{"procedure":"ACME TLS Server","pkcs10":"` + csrBase64(t, false) + `","extra":1}`, 400},
		{"CSR signature does not verify", good, "application/json", `{"procedure":"ACME TLS Server","pkcs10":"` + csrBase64(t, true) + `"}`, 400},
		{"not JSON", good, "text/plain", `{}`, 415},
		{"no client certificate", client(t, s, nil, nil), "application/json", `{}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.client.Post(s.URL()+"/certificates", tt.contentType, strings.NewReader(tt.body))
			if tt.want == 0 {
				if err == nil {
					res.Body.Close()
					t.Fatalf("status %d, want a failed handshake", res.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}
