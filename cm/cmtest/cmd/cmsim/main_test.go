package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyacmegw/caddyacmegw/caddyacmegw"
	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// What cmsim prints is a tab-indented `issuer cm` block that the gateway
// parses and issues through, in both signing modes; its files are gone
// once it stops.
func TestRun_PrintsAWorkingBlockAndCleansUp(t *testing.T) {
	for _, vro := range []bool{false, true} {
		t.Run(map[bool]string{false: "Caller", true: "VRO"}[vro], func(t *testing.T) {
			ctx, stop := context.WithCancel(t.Context())
			r, w := io.Pipe()
			done := make(chan error, 1)
			go func() { done <- run(ctx, w, "127.0.0.1:0", "ACME TLS Server", vro); w.Close() }()
			dir, block := readOutput(t, r)
			go io.Copy(io.Discard, r)

			for _, line := range strings.Split(strings.TrimSpace(block), "\n")[1:] {
				if line != "}" && !regexp.MustCompile(`^\t[a-z_]+ +\S`).MatchString(line) {
					t.Errorf("line %q is not indented with one tab", line)
				}
			}
			var ci caddyacmegw.CMIssuer
			if err := ci.UnmarshalCaddyfile(caddyfile.NewTestDispenser(strings.TrimPrefix(block, "issuer "))); err != nil {
				t.Fatalf("the block does not parse: %v\n%s", err, block)
			}
			if err := ci.Provision(caddy.Context{}); err != nil {
				t.Fatal(err)
			}
			defer ci.Cleanup()
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sim.example.com"}, DNSNames: []string{"sim.example.com"}}, key)
			csr, _ := x509.ParseCertificateRequest(der)
			chain, err := ci.Issue(t.Context(), &gateway.IssueRequest{CSR: csr, Names: []string{"sim.example.com"}})
			if err != nil || len(chain) < 2 {
				t.Fatalf("Issue through the printed block = %d certificates, %v", len(chain), err)
			}

			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s is still there after cmsim stopped: %v", dir, err)
			}
		})
	}
}

// readOutput reads cmsim's output up to the end of the block.
func readOutput(t *testing.T, r io.Reader) (dir, block string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "files in "); ok {
			dir, _, _ = strings.Cut(d, " ")
		}
		if strings.HasPrefix(line, "issuer cm {") || b.Len() > 0 {
			b.WriteString(line + "\n")
		}
		if line == "}" {
			return dir, b.String()
		}
	}
	t.Fatalf("no block in the output: %v", sc.Err())
	return "", ""
}
