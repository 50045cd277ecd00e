package integration

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// findStep returns the smallstep CLI that .ci/deps.sh installs into
// $(go env GOPATH)/bin, or else the one on PATH.
func findStep(t testing.TB) string {
	t.Helper()
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return findClient(t, "step", dirs...)
}

// runStep runs `step <args>` with its configuration (STEPPATH) in a
// directory of its own.
func runStep(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	return runClient(t, bin, []string{"STEPPATH=" + t.TempDir()}, args...)
}

// The smallstep CLI as a new user runs it, with no validity flags: it
// sends notBefore and notAfter as Go's zero time, "contact": null and
// "onlyReturnExisting": false, answers http-01 with its own server, and
// gets a certificate of the issuer's default validity for its key.
func TestStepCLI_ObtainsHTTP01WithoutValidityFlags(t *testing.T) {
	bin := findStep(t)
	dns := startDNS(t)
	httpPort := freePort(t)
	const lifetime = 12 * time.Hour
	// step starts its http-01 server in the background as it asks for
	// validation; over loopback the gateway may connect first, so a second
	// try a second later, as validation_attempts is for.
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		validation_attempts 2
		issuer local {
			lifetime %s
		}
	`, dns.Addr(), httpPort, lifetime))
	dir := t.TempDir()
	crtFile, keyFile := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	const name = "step.example.com"

	out, err := runStep(t, bin, "ca", "certificate", name, crtFile, keyFile,
		"--acme", g.Directory,
		"--standalone",
		"--http-listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--root", g.RootFile,
		"--force",
	)
	if err != nil {
		t.Fatalf("step ca certificate: %v\n%s", err, out)
	}
	leaf := checkChain(t, g, readCertChain(t, crtFile), name)
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != lifetime {
		t.Errorf("certificate valid for %v, want the issuer's default %v", got, lifetime)
	}
	if pub := privateKeyPublic(t, keyFile); !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Error("certificate is not for the key step wrote")
	}
}

// privateKeyPublic reads a PEM private key (PKCS #8, or SEC 1 for EC) and
// returns its public key.
func privateKeyPublic(t testing.TB, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k.(interface{ Public() crypto.PublicKey }).Public()
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %s is neither PKCS #8 nor SEC 1: %v", path, block.Type, err)
	}
	return k.Public()
}
