// Package storagetest is the conformance suite that every storage backend
// must pass: each backend's own tests call Run with a constructor for a fresh,
// empty store. The suite checks the documented contract of storage.Store
// (and of storage.Nonces and storage.Expirer when the store implements
// them), including the compare-and-swap rules under concurrent use, so run
// it with -race.
package storagetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Run runs the conformance suite. newStore returns a fresh store for each
// subtest; records created by one subtest are never looked up by another, so
// stores may share a database as long as ids are not reused. Listings may
// show other subtests' records: the suite checks only its own in them.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"CreateAccount_GetsByIDAndThumbprint", testCreateAccount},
		{"Accounts_UnknownIsNotFound", testAccountNotFound},
		{"CreateAccount_DuplicateThumbprintConflicts", testDuplicateThumbprint},
		{"UpdateAccount_CompareAndSwap", testUpdateAccountCAS},
		{"UpdateAccount_KeyRollover", testKeyRollover},
		{"Accounts_ReturnCopies", testAccountCopies},
		{"CreateOrder_StoresOrderAndNewAuthzs", testCreateOrder},
		{"CreateOrder_LeavesReusedAuthzsAlone", testCreateOrderReusesAuthz},
		{"Orders_UnknownIsNotFound", testOrderNotFound},
		{"UpdateOrder_CompareAndSwap", testUpdateOrderCAS},
		{"ListOrders_PagesOldestFirst", testListOrders},
		{"Orders_ReturnCopies", testOrderCopies},
		{"UpdateAuthz_CompareAndSwap", testUpdateAuthzCAS},
		{"ValidAuthz_MatchesOnlyValidUnexpiredSameIdentifier", testValidAuthz},
		{"ValidAuthz_FollowsUpdates", testValidAuthzFollowsUpdates},
		{"StoreCertificate_StoresAndSwapsOrder", testStoreCertificate},
		{"StoreCertificate_LostSwapStoresNothing", testStoreCertificateLostSwap},
		{"StoreCertificate_DuplicateSerialLeavesOrder", testStoreCertificateDuplicateSerial},
		{"UpdateCertificate_CompareAndSwap", testUpdateCertificateCAS},
		{"Certificates_ReturnCopies", testCertificateCopies},
		{"UpdateOrder_RaceHasOneWinner", testRaceUpdateOrder},
		{"CreateAccount_RaceHasOneWinner", testRaceCreateAccount},
		{"StoreCertificate_RaceHasOneWinner", testRaceStoreCertificate},
		{"Nonces_RedeemOnce", testNonces},
		{"CreateRegistration_GetsAndRefusesDuplicate", testCreateRegistration},
		{"Registrations_KeyIDsAreChecked", testRegistrationKeyIDs},
		{"UpdateRegistration_CompareAndSwap", testUpdateRegistrationCAS},
		{"DeleteRegistration_LeavesAccount", testDeleteRegistration},
		{"ListRegistrations_PagesByKeyID", testListRegistrations},
		{"Registrations_ReturnCopies", testRegistrationCopies},
		{"BindAccount_CreatesAndBinds", testBindAccount},
		{"BindAccount_StaleVersionCreatesNothing", testBindAccountStaleVersion},
		{"BindAccount_BoundRegistrationConflicts", testBindAccountAlreadyBound},
		{"BindAccount_DuplicateThumbprintLeavesUnbound", testBindAccountDuplicateThumbprint},
		{"BindAccount_UnknownRegistrationIsNotFound", testBindAccountUnknownRegistration},
		{"BindAccount_RaceHasOneWinner", testRaceBindAccount},
		{"ListAccounts_FiltersAndPagesInCreationOrder", testListAccounts},
		{"ListCertificates_FiltersAndPagesInIssuanceOrder", testListCertificates},
		{"Audit_AppendsAndPagesOldestFirst", testAudit},
		{"RenewalRules_CreateAndLookUpByScope", testRenewalRules},
		{"ReplacementClaims_CompareAndSwap", testReplacementClaims},
		{"ReplacementClaim_RaceHasOneWinner", testRaceReplacementClaim},
		{"ReplacementClaim_TakeoverRaceHasOneWinner", testRaceReplacementTakeover},
		{"DeleteExpired_KeepsValidAndUnexpired", testDeleteExpiredKeepsValidAndUnexpired},
		{"DeleteExpired_HonoursLimit", testDeleteExpiredHonoursLimit},
		{"DeleteExpired_FollowsStatusChanges", testDeleteExpiredFollowsStatusChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// base is the suite's clock. It has microsecond precision so that backends
// storing SQL timestamps compare equal.
var base = time.Date(2031, time.March, 14, 15, 9, 26, 535897000, time.UTC)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newID returns a random id in the alphabet the gateway uses (base64url).
func newID(t *testing.T) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(t, 12))
}

// newThumbprint returns a random RFC 7638 SHA-256 thumbprint.
func newThumbprint(t *testing.T) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))
}

// newSerial returns a random serial: lower-case hex without leading zeros.
func newSerial(t *testing.T) string {
	return "1" + hex.EncodeToString(randomBytes(t, 15))
}

func newAccount(t *testing.T) *storage.Account {
	return &storage.Account{
		ID:            newID(t),
		KeyThumbprint: newThumbprint(t),
		KeyJWK:        []byte(`{"kty":"EC","crv":"P-256","x":"` + newID(t) + `","y":"` + newID(t) + `"}`),
		Contact:       []string{"mailto:ops@example.com", "mailto:pki@example.com"},
		Status:        storage.StatusValid,
		CreatedAt:     base,
	}
}

func createAccount(t *testing.T, s storage.Store) *storage.Account {
	t.Helper()
	a := newAccount(t)
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func newAuthz(t *testing.T, accountID, name string) *storage.Authorization {
	wildcard := strings.HasPrefix(name, "*.")
	return &storage.Authorization{
		ID:         newID(t),
		AccountID:  accountID,
		Identifier: storage.Identifier{Type: "dns", Value: strings.TrimPrefix(name, "*.")},
		Wildcard:   wildcard,
		Status:     storage.StatusPending,
		Expires:    base.Add(24 * time.Hour),
		Challenges: []storage.Challenge{
			{Type: "http-01", Token: newID(t), Status: storage.StatusPending},
			{Type: "dns-01", Token: newID(t), Status: storage.StatusPending},
		},
	}
}

// newOrder returns an order of the account for names with one new pending
// authorization each, not yet stored.
func newOrder(t *testing.T, accountID string, names ...string) (*storage.Order, []*storage.Authorization) {
	o := &storage.Order{
		ID:        newID(t),
		AccountID: accountID,
		Status:    storage.StatusPending,
		Expires:   base.Add(7 * 24 * time.Hour),
		CreatedAt: base,
		UpdatedAt: base,
		Profile:   "short",
		Replaces:  newSerial(t),
	}
	var authzs []*storage.Authorization
	for _, n := range names {
		a := newAuthz(t, accountID, n)
		authzs = append(authzs, a)
		o.Identifiers = append(o.Identifiers, storage.Identifier{Type: "dns", Value: n})
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	return o, authzs
}

func createOrder(t *testing.T, s storage.Store, accountID string, names ...string) (*storage.Order, []*storage.Authorization) {
	t.Helper()
	o, authzs := newOrder(t, accountID, names...)
	if err := s.CreateOrder(t.Context(), o, authzs); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	return o, authzs
}

// newCertificate returns a certificate for o, not yet stored.
func newCertificate(t *testing.T, o *storage.Order) *storage.Certificate {
	c := &storage.Certificate{
		Serial:    newSerial(t),
		AccountID: o.AccountID,
		OrderID:   o.ID,
		NotBefore: base,
		NotAfter:  base.Add(90 * 24 * time.Hour),
		ChainPEM:  []byte("-----BEGIN CERTIFICATE-----\n" + newID(t) + "\n-----END CERTIFICATE-----\n"),
		Status:    storage.StatusValid,
		IssuedAt:  base,
		Profile:   o.Profile,
		Replaces:  o.Replaces,
	}
	for _, id := range o.Identifiers {
		c.Names = append(c.Names, id.Value)
	}
	return c
}

// mustEqual fails t when got differs from want in any field. Times compare
// with time.Equal and nil slices equal empty ones, so that backends which
// round-trip through JSON or SQL are not held to Go's in-memory layout.
func mustEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(what, reflect.ValueOf(want), reflect.ValueOf(got)); d != "" {
		t.Fatal(d)
	}
}

var timeType = reflect.TypeFor[time.Time]()

func diff(path string, w, g reflect.Value) string {
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) {
			return fmt.Sprintf("%s: want %v, got %v", path, wt, gt)
		}
		return ""
	}
	switch w.Kind() {
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				return fmt.Sprintf("%s: want %v, got %v", path, w.Interface(), g.Interface())
			}
			return ""
		}
		return diff(path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			if d := diff(path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: want %d elements %v, got %d %v", path, w.Len(), w.Interface(), g.Len(), g.Interface())
		}
		for i := range w.Len() {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i)); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			return fmt.Sprintf("%s: want %v, got %v", path, w.Interface(), g.Interface())
		}
		return ""
	}
}
