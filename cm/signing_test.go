package cm_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// needOpenSSL returns the openssl binary: missing, the test fails under CI
// and is skipped elsewhere.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	return bin
}

// The CMS the client sends is standard: the system's openssl verifies it
// against the officer CA and reads back the data PGWY asked to be signed.
func TestSignature_VerifiesWithOpenSSL(t *testing.T) {
	bin := needOpenSSL(t)
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	if _, err := c.Issue(t.Context(), newCSR(t, "cms.example.com"), ""); err != nil {
		t.Fatal(err)
	}
	sig := s.Signatures()[0]
	p7, err := pkcs7.Parse(sig)
	if err != nil || len(p7.Content) == 0 {
		t.Fatalf("signature holds no content: %v", err)
	}
	dir := t.TempDir()
	in, ca, out := filepath.Join(dir, "sig.der"), filepath.Join(dir, "officer-ca.pem"), filepath.Join(dir, "content")
	writeFile(t, in, sig)
	writeFile(t, ca, s.OfficerCAPEM())
	// -purpose any: the officer certificate is for TLS clients, not S/MIME.
	cmd := exec.Command(bin, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", ca, "-purpose", "any", "-binary", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p7.Content) {
		t.Fatalf("openssl read %q, the signature holds %q", got, p7.Content)
	}
	// And it fails against a CA that did not issue the signer.
	writeFile(t, ca, s.CAChainPEM())
	if err := exec.Command(bin, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", ca, "-purpose", "any", "-binary", "-out", out).Run(); err == nil {
		t.Fatal("openssl verified the signature against another CA")
	}
}
