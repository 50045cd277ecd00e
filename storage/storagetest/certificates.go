package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func getCertificate(t *testing.T, s storage.Store, serial string) *storage.Certificate {
	t.Helper()
	c, err := s.GetCertificate(t.Context(), serial)
	if err != nil {
		t.Fatalf("GetCertificate(%q): %v", serial, err)
	}
	return c
}

// finalized returns a copy of o as it is written when its certificate is.
func finalized(o *storage.Order, c *storage.Certificate) *storage.Order {
	done := *o
	done.Status = storage.StatusValid
	done.CertificateSerial = c.Serial
	done.UpdatedAt = base.Add(time.Minute)
	done.CSR = nil
	return &done
}

func testStoreCertificate(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com", "www.example.com")
	c := newCertificate(t, o)
	done := finalized(o, c)
	if err := s.StoreCertificate(t.Context(), c, done); err != nil {
		t.Fatalf("StoreCertificate: %v", err)
	}
	if c.Version != 1 || done.Version != 2 {
		t.Fatalf("Versions after StoreCertificate: certificate %d, order %d; want 1, 2", c.Version, done.Version)
	}
	mustEqual(t, "GetCertificate", c, getCertificate(t, s, c.Serial))
	mustEqual(t, "GetOrder", done, getOrder(t, s, o.ID))

	if _, err := s.GetCertificate(t.Context(), newSerial(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetCertificate(unknown) error = %v, want ErrNotFound", err)
	}
}

func testStoreCertificateLostSwap(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com")
	stale := getOrder(t, s, o.ID)
	o.Status = storage.StatusInvalid
	if err := s.UpdateOrder(t.Context(), o); err != nil {
		t.Fatalf("UpdateOrder: %v", err)
	}

	c := newCertificate(t, stale)
	if err := s.StoreCertificate(t.Context(), c, finalized(stale, c)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("StoreCertificate(stale order) error = %v, want ErrConflict", err)
	}
	if _, err := s.GetCertificate(t.Context(), c.Serial); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetCertificate after lost swap error = %v, want ErrNotFound", err)
	}
	mustEqual(t, "GetOrder after lost swap", o, getOrder(t, s, o.ID))
}

func testStoreCertificateDuplicateSerial(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	first, _ := createOrder(t, s, acct.ID, "example.com")
	second, _ := createOrder(t, s, acct.ID, "example.net")
	c := newCertificate(t, first)
	if err := s.StoreCertificate(t.Context(), c, finalized(first, c)); err != nil {
		t.Fatalf("StoreCertificate: %v", err)
	}

	dup := newCertificate(t, second)
	dup.Serial = c.Serial
	if err := s.StoreCertificate(t.Context(), dup, finalized(second, dup)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("StoreCertificate(duplicate serial) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetOrder after duplicate serial", second, getOrder(t, s, second.ID))
	mustEqual(t, "GetCertificate after duplicate serial", c, getCertificate(t, s, c.Serial))
}

func testUpdateCertificateCAS(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com")
	c := newCertificate(t, o)
	if err := s.StoreCertificate(t.Context(), c, finalized(o, c)); err != nil {
		t.Fatalf("StoreCertificate: %v", err)
	}
	first, second := getCertificate(t, s, c.Serial), getCertificate(t, s, c.Serial)

	first.Status = storage.StatusRevoked
	first.RevokedAt = base.Add(time.Hour)
	first.RevocationReason = 1
	first.ReplacedBy = newSerial(t)
	if err := s.UpdateCertificate(t.Context(), first); err != nil {
		t.Fatalf("UpdateCertificate: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("Version after UpdateCertificate = %d, want 2", first.Version)
	}
	mustEqual(t, "GetCertificate after update", first, getCertificate(t, s, c.Serial))

	second.Status = storage.StatusRevoked
	second.RevocationReason = 4
	if err := s.UpdateCertificate(t.Context(), second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateCertificate(stale Version) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetCertificate after lost swap", first, getCertificate(t, s, c.Serial))
}

func testCertificateCopies(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com", "www.example.com")
	c := newCertificate(t, o)
	if err := s.StoreCertificate(t.Context(), c, finalized(o, c)); err != nil {
		t.Fatalf("StoreCertificate: %v", err)
	}
	want := getCertificate(t, s, c.Serial)

	c.Names[0] = "evil.example"
	c.ChainPEM[0] = 'X'
	mustEqual(t, "GetCertificate after changing the stored record", want, getCertificate(t, s, c.Serial))

	got := getCertificate(t, s, c.Serial)
	got.Names[1] = "evil.example"
	got.ChainPEM[1] = 'X'
	got.Status = storage.StatusRevoked
	mustEqual(t, "GetCertificate after changing a returned record", want, getCertificate(t, s, c.Serial))

	if err := s.UpdateCertificate(t.Context(), want); err != nil {
		t.Fatalf("UpdateCertificate: %v", err)
	}
	want.Names[0] = "evil.example"
	if got := getCertificate(t, s, c.Serial); got.Names[0] == want.Names[0] {
		t.Fatal("changing an updated certificate changed the stored one")
	}
}
