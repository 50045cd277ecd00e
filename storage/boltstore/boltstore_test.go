package boltstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/boltstore"
	"github.com/caddyacmegw/caddyacmegw/storage/storagetest"
)

func open(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "acme.db"))
	})
}

func TestOpen_CreatesPrivateDirectoryAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "acme.db")
	open(t, path)
	for name, want := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", name, fi.Mode(), want)
		}
	}
}

func TestOpen_SecondOpenSaysInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acme.db")
	first := open(t, path)
	_, err := boltstore.OpenTimeout(path, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("second Open error = %v, want ErrUnavailable saying the file is in use", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	second, err := boltstore.OpenTimeout(path, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = second.Close()
}

// TestReopen_KeepsEverything writes each kind of record, closes the file and
// opens it again: what a restart of the gateway does.
func TestReopen_KeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "acme.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, time.March, 14, 15, 9, 26, 535897932, time.UTC)
	reg := &storage.Registration{KeyID: "kid-1", HMACKey: []byte{1, 2, 3}, Status: storage.RegistrationActive, CreatedAt: now}
	acct := &storage.Account{ID: "acct", KeyThumbprint: "tp", KeyJWK: []byte(`{"kty":"EC"}`), Status: storage.StatusValid, CreatedAt: now}
	ident := storage.Identifier{Type: "dns", Value: "example.com"}
	authz := &storage.Authorization{ID: "authz", AccountID: acct.ID, Identifier: ident, Status: storage.StatusPending, Expires: now.Add(time.Hour),
		Challenges: []storage.Challenge{{Type: "http-01", Token: "token", Status: storage.StatusPending}}}
	order := &storage.Order{ID: "order", AccountID: acct.ID, Status: storage.StatusPending, Identifiers: []storage.Identifier{ident},
		AuthzIDs: []string{authz.ID}, Expires: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
	cert := &storage.Certificate{Serial: "1f", AccountID: acct.ID, OrderID: order.ID, Names: []string{ident.Value},
		ChainPEM: []byte("-----BEGIN CERTIFICATE-----\n"), Status: storage.StatusValid, IssuedAt: now}
	entry := &storage.AuditEntry{ID: "audit", Time: now, Actor: "officer", Action: "registration.create", Target: reg.KeyID}
	steps := []struct {
		name string
		do   func() error
	}{
		{"CreateRegistration", func() error { return s.CreateRegistration(ctx, reg) }},
		{"BindAccount", func() error { return s.BindAccount(ctx, acct, reg) }},
		{"CreateOrder", func() error { return s.CreateOrder(ctx, order, []*storage.Authorization{authz}) }},
		{"UpdateAuthz", func() error { authz.Status = storage.StatusValid; return s.UpdateAuthz(ctx, authz) }},
		{"UpdateOrder", func() error { order.Status = storage.StatusProcessing; return s.UpdateOrder(ctx, order) }},
		{"StoreCertificate", func() error { order.Status = storage.StatusValid; return s.StoreCertificate(ctx, cert, order) }},
		{"UpdateCertificate", func() error { cert.Status = storage.StatusRevoked; return s.UpdateCertificate(ctx, cert) }},
		{"AppendAudit", func() error { return s.AppendAudit(ctx, entry) }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path)
	check := func(what string, want any, got any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s after reopening: %v", what, err)
		}
		if !sameJSON(t, want, got) {
			t.Errorf("%s after reopening = %+v, want %+v", what, got, want)
		}
	}
	gotReg, err := s.GetRegistration(ctx, reg.KeyID)
	check("GetRegistration", reg, gotReg, err)
	gotAcct, err := s.AccountByThumbprint(ctx, acct.KeyThumbprint)
	check("AccountByThumbprint", acct, gotAcct, err)
	gotOrder, err := s.GetOrder(ctx, order.ID)
	check("GetOrder", order, gotOrder, err)
	gotAuthz, err := s.ValidAuthz(ctx, acct.ID, ident, false, now)
	check("ValidAuthz", authz, gotAuthz, err)
	gotCert, err := s.GetCertificate(ctx, cert.Serial)
	check("GetCertificate", cert, gotCert, err)
	ids, _, err := s.ListOrders(ctx, acct.ID, "", 10)
	check("ListOrders", []string{order.ID}, ids, err)
	certs, _, err := s.ListCertificates(ctx, storage.CertificateFilter{Status: storage.StatusRevoked}, "", 10)
	check("ListCertificates", []*storage.Certificate{cert}, certs, err)
	entries, _, err := s.ListAudit(ctx, "", 10)
	check("ListAudit", []*storage.AuditEntry{entry}, entries, err)
	if reg.Version != 2 || acct.Version != 1 || order.Version != 3 || authz.Version != 2 || cert.Version != 2 {
		t.Errorf("versions: registration %d, account %d, order %d, authz %d, certificate %d; want 2 1 3 2 2",
			reg.Version, acct.Version, order.Version, authz.Version, cert.Version)
	}

	// The sequences go on where they were, so new records do not overwrite old ones.
	o2 := *order
	o2.ID, o2.Version = "order2", 0
	if err := s.CreateOrder(ctx, &o2, nil); err != nil {
		t.Fatalf("CreateOrder after reopening: %v", err)
	}
	gotOrder, err = s.GetOrder(ctx, order.ID)
	check("GetOrder(old) after a new one", order, gotOrder, err)
}

// TestRelease_WhileIssuing unmaps the file's pages over and over while
// clients issue certificates, reading and writing those pages meanwhile.
func TestRelease_WhileIssuing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "acme.db"))
	var clients sync.WaitGroup
	for range 8 {
		c := newClient(t, s)
		clients.Go(func() {
			for range 20 {
				if err := c.issue(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		clients.Wait()
		close(done)
	}()
	for releases := 0; ; releases++ {
		select {
		case <-done:
			t.Logf("%d releases", releases)
			return
		default:
			boltstore.Release(s)
		}
	}
}

func TestClosed_IsUnavailable(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "acme.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.GetOrder(ctx, "order"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("GetOrder after Close error = %v, want ErrUnavailable", err)
	}
	a := &storage.Account{ID: "acct", KeyThumbprint: "tp"}
	if err := s.CreateAccount(ctx, a); !errors.Is(err, storage.ErrUnavailable) || a.Version != 0 {
		t.Errorf("CreateAccount after Close error = %v, Version %d; want ErrUnavailable, 0", err, a.Version)
	}
	if _, _, err := s.ListAudit(ctx, "", 10); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("ListAudit after Close error = %v, want ErrUnavailable", err)
	}
}

func TestCancelledContext_DoesNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "acme.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := &storage.Account{ID: "acct", KeyThumbprint: "tp"}
	if err := s.CreateAccount(ctx, a); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateAccount(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := s.GetAccount(t.Context(), a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount after a cancelled create error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccount(ctx, a.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("GetAccount(cancelled) error = %v, want context.Canceled", err)
	}
}

func TestListings_MalformedCursorIsRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "acme.db"))
	_, _, err := s.ListAudit(t.Context(), "not base64!", 10)
	if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("ListAudit(malformed cursor) error = %v, want a plain refusal", err)
	}
}

func TestAccountCache_ForgetsWhatChanges(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "acme.db"))
	a := &storage.Account{ID: "acct1", KeyThumbprint: "tp1", KeyJWK: []byte(`{"kty":"EC"}`), Status: storage.StatusValid, CreatedAt: time.Now().UTC()}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if n := boltstore.CachedAccounts(s); n != 1 {
		t.Fatalf("%d accounts in memory after a read, want 1", n)
	}
	a.Status, a.KeyThumbprint = storage.StatusDeactivated, "tp2"
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := boltstore.CachedAccounts(s); n != 0 {
		t.Fatalf("%d accounts in memory after an update, want 0", n)
	}
	for range 2 { // from the file, then from memory
		got, err := s.GetAccount(ctx, a.ID)
		if err != nil || got.Status != storage.StatusDeactivated || got.KeyThumbprint != "tp2" || got.Version != 2 {
			t.Fatalf("after the update: %+v, %v", got, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.ID); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("GetAccount after Close: %v, want ErrUnavailable", err)
	}
}

func TestFsyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := boltstore.FsyncDir(dir); err != nil {
		t.Fatalf("syncing %s: %v", dir, err)
	}
	if runtime.GOOS != "windows" {
		if err := boltstore.FsyncDir(filepath.Join(dir, "missing")); err == nil {
			t.Fatal("syncing a missing directory did not fail")
		}
	}
}

func TestOpen_MakesNewEntriesDurable(t *testing.T) {
	synced := boltstore.RecordDirSyncs(t)
	root := t.TempDir()
	path := filepath.Join(root, "new", "dir", "acme.db")
	s := open(t, path)
	want := []string{root, filepath.Join(root, "new"), filepath.Join(root, "new", "dir")}
	if !slices.Equal(*synced, want) {
		t.Fatalf("synced %q after creating %s, want the parents of what was created: %q", *synced, path, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	*synced = nil
	open(t, path)
	if len(*synced) != 0 {
		t.Fatalf("reopening an existing file synced %q", *synced)
	}
}
