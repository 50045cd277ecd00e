package cm_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/caddyacmegw/caddyacmegw/cm"
	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

type officerFunc func(t *testing.T, s *cmtest.Server) (certPEM, keyPEM []byte)

func goodOfficer(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.Officer(t) }

// writeConfig writes the officer credentials and roots for s and returns a
// Config with fast timeouts.
func writeConfig(t *testing.T, s *cmtest.Server, officer officerFunc) cm.Config {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := officer(t, s)
	cfg := cm.Config{
		Procedures: []cm.Procedure{{Name: cmtest.DefaultProcedure, URL: s.URL()}},
		CertFile:   filepath.Join(dir, "officer.crt"),
		KeyFile:    filepath.Join(dir, "officer.key"),
		ChainFile:  filepath.Join(dir, "chain.pem"),
		RootsFile:  filepath.Join(dir, "roots.pem"),
		Timeout:    2 * time.Second,
		Backoff:    5 * time.Millisecond,
	}
	for path, data := range map[string][]byte{cfg.CertFile: certPEM, cfg.KeyFile: keyPEM, cfg.ChainFile: s.CAChainPEM(), cfg.RootsFile: s.RootsPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func newClient(t *testing.T, cfg cm.Config) *cm.Client {
	t.Helper()
	c, err := cm.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newCSR(t *testing.T, names ...string) []byte {
	t.Helper()
	return newCSRWithKey(t, names...)
}

// newCSRWithKey is a CSR with a fresh P-256 key, the first name as its
// common name.
func newCSRWithKey(t *testing.T, names ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func verify(t *testing.T, s *cmtest.Server, chain []*x509.Certificate, name string) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(s.IssuingRoot())
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
}

// The caller signing round trip: PGWY answers the first request with data
// to sign, the client sends it again signed, and the certificate comes
// back with a chain to CM's issuing root built from the chain file.
func TestIssue_CallerSigningRoundTrip(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	res, err := c.Issue(t.Context(), newCSR(t, "a.example.com"), "")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if len(res.Chain) != 2 || res.Serial != cm.SerialHex(res.Chain[0].SerialNumber) {
		t.Fatalf("result = %+v, want a leaf and the intermediate", res)
	}
	verify(t, s, res.Chain, "a.example.com")
	got := s.Counts()
	if got.Issued != 1 || got.Challenges != 1 || got.SignedIssues != 1 || got.Requests[cmtest.RouteIssue] != 2 {
		t.Errorf("counts = %+v, want one challenge and one signed issue request", got)
	}
	if len(s.Signatures()) != 1 {
		t.Errorf("%d signatures accepted, want 1", len(s.Signatures()))
	}
}

// With server (VRO) signing the first request is the issuing one.
func TestIssue_ServerSigning(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}}})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.Signing = cm.SigningServer
	c := newClient(t, cfg)
	res, err := c.Issue(t.Context(), newCSR(t, "vro.example.com"), "")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	verify(t, s, res.Chain, "vro.example.com")
	if got := s.Counts(); got.Issued != 1 || got.Challenges != 0 || got.Requests[cmtest.RouteIssue] != 1 {
		t.Errorf("counts = %+v, want one request and no challenge", got)
	}
}

// A signer other than the TLS officer signs, as PGWY allows.
func TestIssue_SeparateSigner(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	cfg := writeConfig(t, s, goodOfficer)
	certPEM, keyPEM := s.Officer(t)
	cfg.SignerCertFile, cfg.SignerKeyFile = filepath.Join(t.TempDir(), "signer.crt"), filepath.Join(t.TempDir(), "signer.key")
	writeFile(t, cfg.SignerCertFile, certPEM)
	writeFile(t, cfg.SignerKeyFile, keyPEM)
	c := newClient(t, cfg)
	if _, err := c.Issue(t.Context(), newCSR(t, "signer.example.com"), ""); err != nil {
		t.Fatalf("Issue: %v", err)
	}
	sig, err := pkcs7.Parse(s.Signatures()[0])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := pem.Decode(certPEM)
	if signer := sig.GetOnlySigner(); signer == nil || !bytes.Equal(signer.Raw, want.Bytes) {
		t.Fatal("the signature is not the signer's")
	}
}

// Each procedure is its own endpoint; the empty name is the first.
func TestIssue_ProcedureEndpoints(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {}, "Client": {}}})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.Procedures = append(cfg.Procedures, cm.Procedure{Name: "Client", URL: s.ProcedureURL("Client")})
	c := newClient(t, cfg)
	for _, p := range []string{"", "Client", "Client"} {
		if _, err := c.Issue(t.Context(), newCSR(t, "p.example.com"), p); err != nil {
			t.Fatalf("Issue through %q: %v", p, err)
		}
	}
	if got := s.Counts().IssuedBy; got[cmtest.DefaultProcedure] != 1 || got["Client"] != 2 {
		t.Errorf("issued by procedure %v", got)
	}
	if _, err := c.Issue(t.Context(), newCSR(t, "p.example.com"), "Nope"); cm.Classify(err) != cm.KindConfig {
		t.Errorf("Issue through an unknown procedure = %v, want a config error", err)
	}
}

// A PKCS#7 answer carries the chain: it needs no chain file.
func TestIssue_PKCS7AnswerCarriesTheChain(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {PKCS7: true}}})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.ChainFile = ""
	c := newClient(t, cfg)
	res, err := c.Issue(t.Context(), newCSR(t, "p7.example.com"), "")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if len(res.Chain) != 2 {
		t.Fatalf("chain of %d", len(res.Chain))
	}
	verify(t, s, res.Chain, "p7.example.com")
}

// A DER answer without a chain file has no chain to deliver, and a chain
// file of another CA does not match: both are refused, not delivered.
func TestIssue_ChainIsCheckedAgainstTheChainFile(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	other := cmtest.New(t, cmtest.Options{})
	for name, chain := range map[string][]byte{"none": nil, "another CA": other.CAChainPEM()} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, s, goodOfficer)
			cfg.ChainFile = ""
			if chain != nil {
				cfg.ChainFile = filepath.Join(t.TempDir(), "chain.pem")
				writeFile(t, cfg.ChainFile, chain)
			}
			c := newClient(t, cfg)
			_, err := c.Issue(t.Context(), newCSR(t, "chain.example.com"), "")
			var e *cm.Error
			if !errors.As(err, &e) || !e.Final || e.Ambiguous {
				t.Fatalf("Issue = %v, want a final refusal", err)
			}
		})
	}
}

// PGWY asking for a signature while the client is set for server signing
// is a configuration error that names both remedies, and nothing is signed.
func TestIssue_SigningModeMismatch(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.Signing = cm.SigningServer
	c := newClient(t, cfg)
	_, err := c.Issue(t.Context(), newCSR(t, "m.example.com"), "")
	if cm.Classify(err) != cm.KindConfig || !strings.Contains(err.Error(), "signing caller") || !strings.Contains(err.Error(), "virtual registration officer") {
		t.Fatalf("Issue = %v, want a config error naming both remedies", err)
	}
	if got := s.Counts(); got.Issued != 0 || got.Requests[cmtest.RouteIssue] != 1 {
		t.Errorf("counts = %+v", got)
	}
}

// An answer lost after the signed request is ambiguous: it is not sent
// again, and FindIssued finds the certificate CM issued for the CSR's key
// and names, and nothing for another key.
func TestIssue_LostAnswerIsFoundBySearch(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	csrDER := newCSR(t, "lost.example.com", "www.lost.example.com")
	csr, _ := x509.ParseCertificateRequest(csrDER)
	sent := time.Now()
	s.FaultSigned(cmtest.SignedFault{N: 1, AfterWrite: true})
	_, err := c.Issue(t.Context(), csrDER, "")
	var e *cm.Error
	if !errors.As(err, &e) || !e.Ambiguous {
		t.Fatalf("Issue = %v, want an ambiguous failure", err)
	}
	if got := s.Counts(); got.Issued != 1 || got.Requests[cmtest.RouteIssue] != 2 {
		t.Fatalf("counts = %+v, want one certificate from one signed request", got)
	}
	res, err := c.FindIssued(t.Context(), csr, "", sent)
	if err != nil {
		t.Fatalf("FindIssued: %v", err)
	}
	verify(t, s, res.Chain, "www.lost.example.com")
	if !bytes.Equal(res.Chain[0].RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		t.Fatal("found a certificate for another key")
	}
	other, _ := x509.ParseCertificateRequest(newCSR(t, "lost.example.com", "www.lost.example.com"))
	if _, err := c.FindIssued(t.Context(), other, "", sent); cm.Classify(err) != cm.KindNotFound {
		t.Fatalf("FindIssued for another key = %v, want not found", err)
	}
	if _, err := c.FindIssued(t.Context(), csr, "", time.Now().Add(time.Hour)); cm.Classify(err) != cm.KindNotFound {
		t.Fatalf("FindIssued after the certificate = %v, want not found", err)
	}
}

func TestIssue_Failures(t *testing.T) {
	tests := []struct {
		name      string
		opts      cmtest.Options
		officer   officerFunc
		timeout   time.Duration
		arrange   func(*cmtest.Server)
		final     bool
		kind      cm.Kind
		status    int
		ambiguous bool
		requests  int // issue requests the simulator saw
	}{
		{name: "rejected CSR is a final CSR problem", arrange: func(s *cmtest.Server) { s.RejectCSR(true) },
			final: true, kind: cm.KindCSR, status: 400, requests: 1},
		{name: "name outside the procedure is a final name problem",
			opts:  cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {Domains: []string{"other.test"}}}},
			final: true, kind: cm.KindName, status: 403, requests: 1},
		{name: "5xx to the unsigned request is retried: it cannot issue", arrange: func(s *cmtest.Server) { s.FailNext(3, 503) },
			kind: cm.KindTransient, status: 503, requests: 3},
		{name: "5xx to the signed request is ambiguous and not retried",
			arrange: func(s *cmtest.Server) { s.FaultSigned(cmtest.SignedFault{N: 1, Status: 503}) },
			kind:    cm.KindTransient, status: 503, ambiguous: true, requests: 2},
		{name: "dropped signed request is ambiguous and not retried",
			arrange: func(s *cmtest.Server) { s.FaultSigned(cmtest.SignedFault{N: 1}) },
			kind:    cm.KindTransient, ambiguous: true, requests: 2},
		{name: "latency beyond the timeout is transient", timeout: 100 * time.Millisecond,
			arrange: func(s *cmtest.Server) { s.SetLatency(time.Second) },
			kind:    cm.KindTransient, requests: 3},
		{name: "officer from another CA is a final config error",
			officer: func(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.WrongOfficer(t) },
			final:   true, kind: cm.KindConfig, requests: 0},
		{name: "officer without the required role is a final config error",
			officer: func(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.Officer(t, "auditor") },
			final:   true, kind: cm.KindConfig, status: 403, requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cmtest.New(t, tt.opts)
			officer := tt.officer
			if officer == nil {
				officer = goodOfficer
			}
			cfg := writeConfig(t, s, officer)
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			c := newClient(t, cfg)
			if tt.arrange != nil {
				tt.arrange(s)
			}
			res, err := c.Issue(t.Context(), newCSR(t, "e.example.com"), "")
			var e *cm.Error
			if !errors.As(err, &e) {
				t.Fatalf("Issue = %+v, %v; want *cm.Error", res, err)
			}
			t.Logf("err: %v", err)
			if e.Final != tt.final || e.Kind() != tt.kind || e.Status != tt.status || e.Ambiguous != tt.ambiguous {
				t.Errorf("err = %v: final %v kind %s status %d ambiguous %v; want %v %s %d %v",
					err, e.Final, e.Kind(), e.Status, e.Ambiguous, tt.final, tt.kind, tt.status, tt.ambiguous)
			}
			if tt.timeout != 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline", err)
			}
			if got := s.Counts(); got.Issued != 0 || got.Requests[cmtest.RouteIssue] != tt.requests {
				t.Errorf("counts = %+v, want no certificate and %d issue requests", got, tt.requests)
			}
		})
	}
}

func TestIssue_UnreachableCMIsTransientAndUnambiguous(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	cfg := writeConfig(t, s, goodOfficer)
	s.Close() // nothing listens on the port now: connection refused
	c := newClient(t, cfg)
	_, err := c.Issue(t.Context(), newCSR(t, "f.example.com"), "")
	var e *cm.Error
	if !errors.As(err, &e) || e.Final || e.Ambiguous {
		t.Fatalf("Issue = %v, want transient and not ambiguous", err)
	}
}

func TestNew_RefusesBadConfig(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	tests := []struct {
		name   string
		mutate func(t *testing.T, cfg *cm.Config)
		want   error // nil: any error
	}{
		{"PKCS#8 encrypted key", func(t *testing.T, cfg *cm.Config) {
			writeKey(t, cfg, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("secret-key-bytes")})
		}, cm.ErrEncryptedKey},
		{"legacy encrypted key", func(t *testing.T, cfg *cm.Config) {
			writeKey(t, cfg, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("secret-key-bytes"),
				Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00000000000000000000000000000000"}})
		}, cm.ErrEncryptedKey},
		{"plain http", func(_ *testing.T, cfg *cm.Config) { cfg.Procedures[0].URL = "http://127.0.0.1/pgwy/api" }, nil},
		{"no procedure", func(_ *testing.T, cfg *cm.Config) { cfg.Procedures = nil }, nil},
		{"procedure named twice", func(_ *testing.T, cfg *cm.Config) { cfg.Procedures = append(cfg.Procedures, cfg.Procedures[0]) }, nil},
		{"unknown signing", func(_ *testing.T, cfg *cm.Config) { cfg.Signing = "officer" }, nil},
		{"no chain in the chain file", func(_ *testing.T, cfg *cm.Config) { cfg.ChainFile = cfg.KeyFile }, nil},
		{"no roots", func(_ *testing.T, cfg *cm.Config) { cfg.RootsFile = cfg.CertFile + ".missing" }, nil},
		{"key of another certificate", func(t *testing.T, cfg *cm.Config) {
			_, key := s.Officer(t)
			if err := os.WriteFile(cfg.KeyFile, key, 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, s, goodOfficer)
			tt.mutate(t, &cfg)
			_, err := cm.New(cfg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-key-bytes") || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func writeKey(t *testing.T, cfg *cm.Config, b *pem.Block) {
	t.Helper()
	writeFile(t, cfg.KeyFile, pem.EncodeToMemory(b))
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A VRO endpoint while the client is set for caller signing: the
// certificate is taken, and the result says the write went unsigned.
func TestIssue_UnsignedWriteIsReported(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}}})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	res, err := c.Issue(t.Context(), newCSR(t, "u.example.com"), "")
	if err != nil || !res.UnsignedWrite {
		t.Fatalf("Issue = %+v, %v; want a certificate reported as an unsigned write", res, err)
	}
}
