package caddystore_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/caddystore"
)

// failingStorage fails every Store of a key containing failOn while it is
// set, as a storage that goes away mid-request would.
type failingStorage struct {
	*certmagic.FileStorage
	failOn atomic.Value // string
}

func (f *failingStorage) Store(ctx context.Context, key string, value []byte) error {
	if s, _ := f.failOn.Load().(string); s != "" && strings.Contains(key, s) {
		return errors.New("disk full")
	}
	return f.FileStorage.Store(ctx, key, value)
}

// TestBindAccount_FailedRegistrationWriteCreatesNoAccount checks the commit
// point: when the registration cannot be written, the account written just
// before it is taken back, and the registration binds later.
func TestBindAccount_FailedRegistrationWriteCreatesNoAccount(t *testing.T) {
	ctx := t.Context()
	fs := &failingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := caddystore.New(fs, "acme_gateway/test")
	r := &storage.Registration{KeyID: "kid1", HMACKey: []byte("secret"), Status: storage.RegistrationActive}
	if err := s.CreateRegistration(ctx, r); err != nil {
		t.Fatal(err)
	}
	a := &storage.Account{ID: "acct1", KeyThumbprint: "thumb1", Status: storage.StatusValid}

	fs.failOn.Store("/registrations/")
	if err := s.BindAccount(ctx, a, r); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("BindAccount(registration write fails) error = %v, want ErrUnavailable", err)
	}
	if _, err := s.GetAccount(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount after failed bind error = %v, want ErrNotFound", err)
	}
	if _, err := s.AccountByThumbprint(ctx, a.KeyThumbprint); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AccountByThumbprint after failed bind error = %v, want ErrNotFound", err)
	}
	if accts, _, err := s.ListAccounts(ctx, storage.AccountFilter{}, "", 10); err != nil || len(accts) != 0 {
		t.Errorf("ListAccounts after failed bind = %d accounts, %v; want none", len(accts), err)
	}
	if a.Version != 0 || r.Version != 1 || r.AccountID != "" {
		t.Errorf("arguments changed by a failed bind: account Version %d, registration Version %d AccountID %q", a.Version, r.Version, r.AccountID)
	}

	fs.failOn.Store("")
	if err := s.BindAccount(ctx, a, r); err != nil {
		t.Fatalf("BindAccount after the storage recovered: %v", err)
	}
	if got, err := s.GetRegistration(ctx, r.KeyID); err != nil || got.AccountID != a.ID {
		t.Fatalf("GetRegistration = %+v, %v; want bound to %q", got, err, a.ID)
	}
}

// TestListings_EmptyStore checks that listings of directories that were
// never written are empty rather than errors.
func TestListings_EmptyStore(t *testing.T) {
	ctx := t.Context()
	s := caddystore.New(&certmagic.FileStorage{Path: t.TempDir()}, "acme_gateway/test")
	regs, next, err := s.ListRegistrations(ctx, "", 10)
	if err != nil || len(regs) != 0 || next != "" {
		t.Errorf("ListRegistrations = %d, %q, %v; want none", len(regs), next, err)
	}
	accts, next, err := s.ListAccounts(ctx, storage.AccountFilter{}, "", 10)
	if err != nil || len(accts) != 0 || next != "" {
		t.Errorf("ListAccounts = %d, %q, %v; want none", len(accts), next, err)
	}
	certs, next, err := s.ListCertificates(ctx, storage.CertificateFilter{}, "", 10)
	if err != nil || len(certs) != 0 || next != "" {
		t.Errorf("ListCertificates = %d, %q, %v; want none", len(certs), next, err)
	}
	entries, next, err := s.ListAudit(ctx, "", 10)
	if err != nil || len(entries) != 0 || next != "" {
		t.Errorf("ListAudit = %d, %q, %v; want none", len(entries), next, err)
	}
}
