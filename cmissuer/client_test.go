package cmissuer_test

import (
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

	"github.com/caddyacmegw/caddyacmegw/cmissuer"
	"github.com/caddyacmegw/caddyacmegw/cmissuer/cmtest"
)

type officerFunc func(t *testing.T, s *cmtest.Server) (certPEM, keyPEM []byte)

func goodOfficer(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.Officer(t) }

// writeConfig writes the officer credentials and roots for s and returns a
// Config with fast timeouts.
func writeConfig(t *testing.T, s *cmtest.Server, officer officerFunc) cmissuer.Config {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := officer(t, s)
	cfg := cmissuer.Config{
		URL:       s.URL(),
		Procedure: cmtest.DefaultProcedure,
		CertFile:  filepath.Join(dir, "officer.crt"),
		KeyFile:   filepath.Join(dir, "officer.key"),
		RootsFile: filepath.Join(dir, "roots.pem"),
		Timeout:   2 * time.Second,
		Backoff:   5 * time.Millisecond,
	}
	for path, data := range map[string][]byte{cfg.CertFile: certPEM, cfg.KeyFile: keyPEM, cfg.RootsFile: s.RootsPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func newClient(t *testing.T, cfg cmissuer.Config) *cmissuer.Client {
	t.Helper()
	c, err := cmissuer.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newCSR(t *testing.T, names ...string) []byte {
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

func TestIssue_ImmediateChainVerifiesAgainstCA(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	nb := time.Now().Add(-time.Minute).Truncate(time.Second)
	na := nb.Add(7 * 24 * time.Hour)
	res, err := c.Issue(t.Context(), newCSR(t, "a.example.com"), "", nb, na, "ops@example.com")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if res.Pending || res.ID == "" || len(res.Chain) != 2 {
		t.Fatalf("result = %+v, want an issued chain of 2", res)
	}
	verify(t, s, res.Chain, "a.example.com")
	leaf := res.Chain[0]
	if res.Serial != cmissuer.SerialHex(leaf.SerialNumber) || !leaf.NotAfter.Equal(na) ||
		len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "ops@example.com" {
		t.Errorf("leaf serial %s (result %s), notAfter %v (want %v), emails %v", leaf.SerialNumber.Text(16), res.Serial, leaf.NotAfter, na, leaf.EmailAddresses)
	}
	if got := s.Counts(); got.Issued != 1 || got.Requests["POST /certificates"] != 1 {
		t.Errorf("counts = %+v", got)
	}
}

func TestIssue_ApprovalIsPendingUntilApproved(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{"approved": {Approval: true}}})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	res, err := c.Issue(t.Context(), newCSR(t, "b.example.com"), "approved", time.Time{}, time.Time{}, "")
	if err != nil || !res.Pending || res.ID == "" {
		t.Fatalf("Issue = %+v, %v; want pending with an id", res, err)
	}
	if again, err := c.Poll(t.Context(), res.ID); err != nil || !again.Pending {
		t.Fatalf("Poll before approval = %+v, %v; want pending", again, err)
	}
	if err := s.Approve(res.ID); err != nil {
		t.Fatal(err)
	}
	s.FailNext(1, 502) // the details GET is idempotent: retried
	done, err := c.Poll(t.Context(), res.ID)
	if err != nil || done.Pending {
		t.Fatalf("Poll after approval = %+v, %v", done, err)
	}
	verify(t, s, done.Chain, "b.example.com")
	got := s.Counts()
	if got.Pending != 1 || got.Issued != 1 || got.Requests["GET /certificates/{id}/details"] != 3 {
		t.Errorf("counts = %+v", got)
	}
	if _, err := c.Poll(t.Context(), "nosuchid"); cmissuer.Classify(err) != cmissuer.KindNotFound {
		t.Errorf("Poll(unknown) = %v, want not found", err)
	}
}

func TestRevoke_RecordsReason(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	res, err := c.Issue(t.Context(), newCSR(t, "c.example.com"), "", time.Time{}, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	s.FailNext(1, 503) // revoking one serial is idempotent: retried
	if err := c.Revoke(t.Context(), res.Serial, 4); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if reason, ok := s.Revocation(res.Serial); !ok || reason != 4 {
		t.Errorf("Revocation = %d, %v; want 4, true", reason, ok)
	}
	if err := c.Revoke(t.Context(), res.Serial, 1); cmissuer.Classify(err) != cmissuer.KindAlreadyRevoked {
		t.Errorf("second Revoke = %v, want already revoked", err)
	}
	if err := c.Revoke(t.Context(), "abcdef", 0); cmissuer.Classify(err) != cmissuer.KindNotFound {
		t.Errorf("Revoke(unknown) = %v, want not found", err)
	}
	if got := s.Counts(); got.Revoked != 1 || got.Requests["POST /certificates/revoke"] != 4 {
		t.Errorf("counts = %+v", got)
	}
}

// TestRevoke_RetryAfterLostAnswerIsConfirmed: when the first attempt revoked
// but its answer was lost, the retry's 409 confirms the revocation.
func TestRevoke_RetryAfterLostAnswerIsConfirmed(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.Timeout = 300 * time.Millisecond
	c := newClient(t, cfg)
	res, err := c.Issue(t.Context(), newCSR(t, "d.example.com"), "", time.Time{}, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The certificate is revoked, as a first attempt whose answer never
	// came back would have left it; then that lost answer is replayed.
	if err := c.Revoke(t.Context(), res.Serial, 1); err != nil {
		t.Fatal(err)
	}
	s.DropConnections(1)
	if err := c.Revoke(t.Context(), res.Serial, 1); err != nil {
		t.Errorf("Revoke after a dropped attempt = %v, want confirmed", err)
	}
}

func TestIssue_Failures(t *testing.T) {
	tests := []struct {
		name      string
		opts      cmtest.Options
		officer   officerFunc
		timeout   time.Duration
		procedure string
		arrange   func(*cmtest.Server)
		final     bool
		kind      cmissuer.Kind
		status    int
		ambiguous bool
		posts     int // POSTs the simulator saw; -1: not checked
	}{
		{name: "unknown procedure is final", procedure: "nope", final: true, kind: cmissuer.KindOther, status: 400, posts: 1},
		{name: "rejected CSR is a final CSR problem", arrange: func(s *cmtest.Server) { s.RejectCSR(true) },
			final: true, kind: cmissuer.KindCSR, status: 400, posts: 1},
		{name: "name outside the procedure is a final name problem",
			opts:  cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {Domains: []string{"other.test"}}}},
			final: true, kind: cmissuer.KindName, status: 403, posts: 1},
		{name: "5xx is transient and not retried", arrange: func(s *cmtest.Server) { s.FailNext(1, 503) },
			kind: cmissuer.KindTransient, status: 503, ambiguous: true, posts: 1},
		{name: "dropped connection is transient and not retried", arrange: func(s *cmtest.Server) { s.DropConnections(1) },
			kind: cmissuer.KindTransient, ambiguous: true, posts: 1},
		{name: "latency beyond the timeout is transient", timeout: 100 * time.Millisecond,
			arrange: func(s *cmtest.Server) { s.SetLatency(time.Second) },
			kind:    cmissuer.KindTransient, ambiguous: true, posts: 1},
		{name: "officer from another CA is a final config error",
			officer: func(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.WrongOfficer(t) },
			final:   true, kind: cmissuer.KindConfig, posts: 0},
		{name: "officer without the required role is a final config error",
			officer: func(t *testing.T, s *cmtest.Server) ([]byte, []byte) { return s.Officer(t, "auditor") },
			final:   true, kind: cmissuer.KindConfig, status: 403, posts: 1},
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
			res, err := c.Issue(t.Context(), newCSR(t, "e.example.com"), tt.procedure, time.Time{}, time.Time{}, "")
			var e *cmissuer.Error
			if !errors.As(err, &e) {
				t.Fatalf("Issue = %+v, %v; want *cmissuer.Error", res, err)
			}
			t.Logf("err: %v", err)
			if e.Final != tt.final || e.Kind() != tt.kind || e.Status != tt.status || e.Ambiguous != tt.ambiguous {
				t.Errorf("err = %v: final %v kind %s status %d ambiguous %v; want %v %s %d %v",
					err, e.Final, e.Kind(), e.Status, e.Ambiguous, tt.final, tt.kind, tt.status, tt.ambiguous)
			}
			if tt.timeout != 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline", err)
			}
			if got := s.Counts(); got.Issued != 0 || got.Requests["POST /certificates"] != tt.posts {
				t.Errorf("counts = %+v, want no issue and %d POSTs", got, tt.posts)
			}
		})
	}
}

func TestIssue_UnreachableCMIsTransientAndUnambiguous(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	cfg := writeConfig(t, s, goodOfficer)
	s.Close() // nothing listens on the port now: connection refused
	c := newClient(t, cfg)
	_, err := c.Issue(t.Context(), newCSR(t, "f.example.com"), "", time.Time{}, time.Time{}, "")
	var e *cmissuer.Error
	if !errors.As(err, &e) || e.Final || e.Ambiguous {
		t.Fatalf("Issue = %v, want transient and not ambiguous", err)
	}
}

func TestNew_RefusesBadConfig(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	tests := []struct {
		name   string
		mutate func(t *testing.T, cfg *cmissuer.Config)
		want   error // nil: any error
	}{
		{"PKCS#8 encrypted key", func(t *testing.T, cfg *cmissuer.Config) {
			writeKey(t, cfg, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("secret-key-bytes")})
		}, cmissuer.ErrEncryptedKey},
		{"legacy encrypted key", func(t *testing.T, cfg *cmissuer.Config) {
			writeKey(t, cfg, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("secret-key-bytes"),
				Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00000000000000000000000000000000"}})
		}, cmissuer.ErrEncryptedKey},
		{"plain http", func(_ *testing.T, cfg *cmissuer.Config) { cfg.URL = "http://127.0.0.1/pgwy/api" }, nil},
		{"no roots", func(_ *testing.T, cfg *cmissuer.Config) { cfg.RootsFile = cfg.CertFile + ".missing" }, nil},
		{"key of another certificate", func(t *testing.T, cfg *cmissuer.Config) {
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
			_, err := cmissuer.New(cfg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-key-bytes") || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func writeKey(t *testing.T, cfg *cmissuer.Config, b *pem.Block) {
	t.Helper()
	if err := os.WriteFile(cfg.KeyFile, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
}
