package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// expirer returns s as a storage.Expirer, or skips the test.
func expirer(t *testing.T, s storage.Store) storage.Expirer {
	t.Helper()
	e, ok := s.(storage.Expirer)
	if !ok {
		t.Skip("the store does not implement storage.Expirer")
	}
	return e
}

// expiringOrder stores an order of the account, created at created, that
// expires at expires with one new authorization of status authzStatus that
// expires a day later.
func expiringOrder(t *testing.T, s storage.Store, accountID string, created, expires time.Time, authzStatus string) (*storage.Order, *storage.Authorization) {
	t.Helper()
	o, authzs := newOrder(t, accountID, newID(t)+".example")
	o.CreatedAt, o.UpdatedAt, o.Expires = created, created, expires
	a := authzs[0]
	a.Status, a.Expires = authzStatus, expires.Add(24*time.Hour)
	if err := s.CreateOrder(t.Context(), o, authzs); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	return o, a
}

// deleteExpired calls DeleteExpired and fails t unless it deleted want.
func deleteExpired(t *testing.T, e storage.Expirer, before time.Time, limit, want int) {
	t.Helper()
	n, err := e.DeleteExpired(t.Context(), before, limit)
	if err != nil || n != want {
		t.Fatalf("DeleteExpired(%v, %d) = %d, %v; want %d", before, limit, n, err, want)
	}
}

// mustBeGone fails t unless get finds nothing.
func mustBeGone(t *testing.T, what string, get func() error) {
	t.Helper()
	if err := get(); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("%s after DeleteExpired: %v, want ErrNotFound", what, err)
	}
}

func testDeleteExpiredKeepsValidAndUnexpired(t *testing.T, s storage.Store) {
	e := expirer(t, s)
	ctx := t.Context()
	acct := createAccount(t, s)
	// An order that expired unfinished: it and its authorization go.
	gone, goneAuthz := expiringOrder(t, s, acct.ID, base.Add(-72*time.Hour), base.Add(-48*time.Hour), storage.StatusPending)
	// An expired order that led to a certificate: kept, with its valid
	// authorization, which outlives it.
	issued, validAuthz := expiringOrder(t, s, acct.ID, base.Add(-71*time.Hour), base.Add(-48*time.Hour), storage.StatusValid)
	cert := newCertificate(t, issued)
	issued.Status, issued.CertificateSerial = storage.StatusValid, cert.Serial
	if err := s.StoreCertificate(ctx, cert, issued); err != nil {
		t.Fatalf("StoreCertificate: %v", err)
	}
	// An expired invalid order that reused the valid authorization: the
	// order goes, the authorization stays.
	reusing, _ := newOrder(t, acct.ID)
	reusing.CreatedAt, reusing.Expires, reusing.Status = base.Add(-70*time.Hour), base.Add(-time.Hour), storage.StatusInvalid
	reusing.Identifiers, reusing.AuthzIDs = []storage.Identifier{validAuthz.Identifier}, []string{validAuthz.ID}
	if err := s.CreateOrder(ctx, reusing, []*storage.Authorization{validAuthz}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	// An order that has not expired yet.
	fresh, freshAuthz := expiringOrder(t, s, acct.ID, base.Add(-69*time.Hour), base.Add(time.Hour), storage.StatusPending)

	deleteExpired(t, e, base, 100, 3)
	mustBeGone(t, "expired pending order", func() error { _, err := s.GetOrder(ctx, gone.ID); return err })
	mustBeGone(t, "its authorization", func() error { _, err := s.GetAuthz(ctx, goneAuthz.ID); return err })
	mustBeGone(t, "expired invalid order", func() error { _, err := s.GetOrder(ctx, reusing.ID); return err })
	for _, id := range []string{issued.ID, fresh.ID} {
		if _, err := s.GetOrder(ctx, id); err != nil {
			t.Fatalf("GetOrder(%s) after DeleteExpired: %v", id, err)
		}
	}
	if _, err := s.GetAuthz(ctx, freshAuthz.ID); err != nil {
		t.Fatalf("GetAuthz of an unexpired order after DeleteExpired: %v", err)
	}
	if _, err := s.GetCertificate(ctx, cert.Serial); err != nil {
		t.Fatalf("GetCertificate after DeleteExpired: %v", err)
	}
	if a, err := s.ValidAuthz(ctx, acct.ID, validAuthz.Identifier, false, base.Add(-48*time.Hour)); err != nil || a.ID != validAuthz.ID {
		t.Fatalf("ValidAuthz after DeleteExpired = %v, %v; want the valid authorization", a, err)
	}
	ids, _, err := s.ListOrders(ctx, acct.ID, "", 10)
	if err != nil {
		t.Fatalf("ListOrders: %v", err)
	}
	mustEqual(t, "ListOrders after DeleteExpired", []string{issued.ID, fresh.ID}, ids)
	deleteExpired(t, e, base, 100, 0)
}

func testDeleteExpiredHonoursLimit(t *testing.T, s storage.Store) {
	e := expirer(t, s)
	acct := createAccount(t, s)
	for i := range 5 {
		expiringOrder(t, s, acct.ID, base.Add(time.Duration(i)*time.Minute), base.Add(time.Hour), storage.StatusPending)
	}
	// Ten records in all: orders expire an hour, authorizations a day
	// and an hour after base.
	before := base.Add(48 * time.Hour)
	for _, want := range []int{3, 3, 3, 1, 0} {
		deleteExpired(t, e, before, 3, want)
	}
	if ids, _, err := s.ListOrders(t.Context(), acct.ID, "", 10); err != nil || len(ids) != 0 {
		t.Fatalf("ListOrders after deleting every order = %v, %v; want none", ids, err)
	}
}

func testDeleteExpiredFollowsStatusChanges(t *testing.T, s storage.Store) {
	e := expirer(t, s)
	ctx := t.Context()
	acct := createAccount(t, s)
	expired := base.Add(-48 * time.Hour)
	// Pending when stored, valid by the time it expired: kept.
	o, a := expiringOrder(t, s, acct.ID, base.Add(-72*time.Hour), expired, storage.StatusPending)
	a.Status = storage.StatusValid
	if err := s.UpdateAuthz(ctx, a); err != nil {
		t.Fatalf("UpdateAuthz: %v", err)
	}
	o.Status = storage.StatusValid
	if err := s.UpdateOrder(ctx, o); err != nil {
		t.Fatalf("UpdateOrder: %v", err)
	}
	// Valid when stored, deactivated since: deleted with its order.
	o2, a2 := expiringOrder(t, s, acct.ID, base.Add(-71*time.Hour), expired, storage.StatusValid)
	a2.Status = storage.StatusDeactivated
	if err := s.UpdateAuthz(ctx, a2); err != nil {
		t.Fatalf("UpdateAuthz: %v", err)
	}

	deleteExpired(t, e, base, 100, 2)
	mustBeGone(t, "expired pending order", func() error { _, err := s.GetOrder(ctx, o2.ID); return err })
	mustBeGone(t, "deactivated authorization", func() error { _, err := s.GetAuthz(ctx, a2.ID); return err })
	if _, err := s.GetOrder(ctx, o.ID); err != nil {
		t.Fatalf("GetOrder of an order turned valid: %v", err)
	}
	if _, err := s.GetAuthz(ctx, a.ID); err != nil {
		t.Fatalf("GetAuthz of an authorization turned valid: %v", err)
	}
}
