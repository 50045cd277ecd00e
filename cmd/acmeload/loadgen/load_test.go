package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

func TestRun_RefusesBadConfig(t *testing.T) {
	dns := startTestDNS(t, net.IPv4(127, 0, 0, 1))
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no directory", Config{DNS: dns}, "directory"},
		{"unknown challenge", Config{Directory: "https://ca.test/dir", Challenge: "tls-alpn-01", DNS: dns}, "tls-alpn-01"},
		{"dns-01 without DNS", Config{Directory: "https://ca.test/dir"}, "DNS server"},
		{"http-01 without responder", Config{Directory: "https://ca.test/dir", Challenge: "http-01", DNS: dns}, "responder"},
		{"unknown key type", Config{Directory: "https://ca.test/dir", KeyType: "ed25519", DNS: dns}, "ed25519"},
		{"fewer bindings than workers", Config{Directory: "https://ca.test/dir", Workers: 2, EAB: []acme.EAB{{KeyID: "k", MACKey: "AQID"}}, DNS: dns}, "each worker needs its own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestRun_FailsWhenAccountsCannotBeMade(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dns := startTestDNS(t, net.IPv4(127, 0, 0, 1))
	_, err := Run(context.Background(), Config{Directory: srv.URL + "/directory", Workers: 2, DNS: dns})
	if err == nil || !strings.Contains(err.Error(), "worker 1") {
		t.Fatalf("error %v, want the account failure of each worker", err)
	}
}
