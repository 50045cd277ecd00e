package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func getOrder(t *testing.T, s storage.Store, id string) *storage.Order {
	t.Helper()
	o, err := s.GetOrder(t.Context(), id)
	if err != nil {
		t.Fatalf("GetOrder(%q): %v", id, err)
	}
	return o
}

func getAuthz(t *testing.T, s storage.Store, id string) *storage.Authorization {
	t.Helper()
	a, err := s.GetAuthz(t.Context(), id)
	if err != nil {
		t.Fatalf("GetAuthz(%q): %v", id, err)
	}
	return a
}

func testCreateOrder(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, authzs := createOrder(t, s, acct.ID, "example.com", "*.example.com")
	if o.Version != 1 {
		t.Fatalf("order Version after CreateOrder = %d, want 1", o.Version)
	}
	mustEqual(t, "GetOrder", o, getOrder(t, s, o.ID))
	for _, a := range authzs {
		if a.Version != 1 {
			t.Fatalf("authz Version after CreateOrder = %d, want 1", a.Version)
		}
		mustEqual(t, "GetAuthz", a, getAuthz(t, s, a.ID))
	}
}

func testCreateOrderReusesAuthz(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	_, first := createOrder(t, s, acct.ID, "example.com")
	reused := first[0]
	reused.Status = storage.StatusValid
	reused.Challenges[0].Status = storage.StatusValid
	reused.Challenges[0].Validated = base
	if err := s.UpdateAuthz(t.Context(), reused); err != nil {
		t.Fatalf("UpdateAuthz: %v", err)
	}
	stored := getAuthz(t, s, reused.ID)

	o, fresh := newOrder(t, acct.ID, "www.example.com")
	// A caller's copy of a reused authz is not written, even when it differs.
	reused.Status = storage.StatusDeactivated
	authzs := []*storage.Authorization{reused, fresh[0]}
	o.Identifiers = slices.Insert(o.Identifiers, 0, reused.Identifier)
	o.AuthzIDs = slices.Insert(o.AuthzIDs, 0, reused.ID)
	if err := s.CreateOrder(t.Context(), o, authzs); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if reused.Version != 2 {
		t.Fatalf("reused authz Version after CreateOrder = %d, want 2 (untouched)", reused.Version)
	}
	if fresh[0].Version != 1 {
		t.Fatalf("new authz Version after CreateOrder = %d, want 1", fresh[0].Version)
	}
	mustEqual(t, "GetAuthz(reused)", stored, getAuthz(t, s, reused.ID))
	mustEqual(t, "GetAuthz(new)", fresh[0], getAuthz(t, s, fresh[0].ID))
	mustEqual(t, "GetOrder", o, getOrder(t, s, o.ID))
}

func testOrderNotFound(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	createOrder(t, s, acct.ID, "example.com")
	if _, err := s.GetOrder(t.Context(), newID(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetOrder(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAuthz(t.Context(), newID(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAuthz(unknown) error = %v, want ErrNotFound", err)
	}
}

func testUpdateOrderCAS(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com")
	first, second := getOrder(t, s, o.ID), getOrder(t, s, o.ID)

	first.Status = storage.StatusProcessing
	first.UpdatedAt = base.Add(time.Minute)
	first.CSR = []byte{0x30, 0x82, 0x01, 0x0a}
	first.IssuerRef = "req-" + newID(t)
	if err := s.UpdateOrder(t.Context(), first); err != nil {
		t.Fatalf("UpdateOrder: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("Version after UpdateOrder = %d, want 2", first.Version)
	}
	mustEqual(t, "GetOrder after update", first, getOrder(t, s, o.ID))

	second.Status = storage.StatusInvalid
	second.Error = []byte(`{"type":"urn:ietf:params:acme:error:badCSR"}`)
	if err := s.UpdateOrder(t.Context(), second); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateOrder(stale Version) error = %v, want ErrConflict", err)
	}
	mustEqual(t, "GetOrder after lost swap", first, getOrder(t, s, o.ID))
}

func testListOrders(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct, other, idle := createAccount(t, s), createAccount(t, s), createAccount(t, s)

	// Ids sort against creation order so that a backend listing by id fails.
	var want []string
	for range 5 {
		want = append(want, newID(t))
	}
	slices.Sort(want)
	slices.Reverse(want)
	for i, id := range want {
		o, authzs := newOrder(t, acct.ID, "example.com")
		o.ID = id
		o.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if err := s.CreateOrder(ctx, o, authzs); err != nil {
			t.Fatalf("CreateOrder: %v", err)
		}
		createOrder(t, s, other.ID, "example.org")
	}

	var got []string
	cursor, pages := "", 0
	for {
		ids, next, err := s.ListOrders(ctx, acct.ID, cursor, 2)
		if err != nil {
			t.Fatalf("ListOrders(cursor %q): %v", cursor, err)
		}
		if len(ids) > 2 {
			t.Fatalf("ListOrders(limit 2) returned %d ids", len(ids))
		}
		got = append(got, ids...)
		pages++
		if next == "" {
			break
		}
		if pages > len(want) {
			t.Fatalf("ListOrders does not end: ids so far %v", got)
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListOrders pages = %v, want %v (oldest first)", got, want)
	}
	if pages != 3 {
		t.Errorf("ListOrders with limit 2 over 5 orders took %d pages, want 3", pages)
	}

	ids, next, err := s.ListOrders(ctx, acct.ID, "", len(want))
	if err != nil || next != "" || !slices.Equal(ids, want) {
		t.Errorf("ListOrders(limit %d) = %v, %q, %v; want all, no next page", len(want), ids, next, err)
	}
	ids, next, err = s.ListOrders(ctx, other.ID, "", 100)
	if err != nil || next != "" || len(ids) != len(want) || slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(want, id) }) {
		t.Errorf("ListOrders(other account) = %v, %q, %v; want its own %d orders only", ids, next, err, len(want))
	}
	ids, next, err = s.ListOrders(ctx, idle.ID, "", 10)
	if err != nil || next != "" || len(ids) != 0 {
		t.Errorf("ListOrders(account without orders) = %v, %q, %v; want none", ids, next, err)
	}
}

func testOrderCopies(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, authzs := createOrder(t, s, acct.ID, "example.com", "example.net")
	wantOrder, wantAuthz := getOrder(t, s, o.ID), getAuthz(t, s, authzs[0].ID)

	o.Identifiers[0].Value = "evil.example"
	o.AuthzIDs[0] = newID(t)
	authzs[0].Challenges[0].Token = newID(t)
	mustEqual(t, "GetOrder after changing the created record", wantOrder, getOrder(t, s, o.ID))
	mustEqual(t, "GetAuthz after changing the created record", wantAuthz, getAuthz(t, s, authzs[0].ID))

	got := getOrder(t, s, o.ID)
	got.Identifiers[0].Value = "evil.example"
	got.AuthzIDs[1] = newID(t)
	got.Status = storage.StatusInvalid
	mustEqual(t, "GetOrder after changing a returned record", wantOrder, getOrder(t, s, o.ID))

	gotAuthz := getAuthz(t, s, authzs[0].ID)
	gotAuthz.Challenges[0].Status = storage.StatusValid
	gotAuthz.Challenges = append(gotAuthz.Challenges[:1], storage.Challenge{Type: "tls-alpn-01"})
	mustEqual(t, "GetAuthz after changing a returned record", wantAuthz, getAuthz(t, s, authzs[0].ID))

	// Updates copy too.
	wantOrder.CSR = []byte{0x30, 0x01}
	if err := s.UpdateOrder(t.Context(), wantOrder); err != nil {
		t.Fatalf("UpdateOrder: %v", err)
	}
	wantOrder.CSR[0] = 0xff
	if got := getOrder(t, s, o.ID); got.CSR[0] != 0x30 {
		t.Fatal("changing an updated order changed the stored one")
	}
	wantAuthz.Challenges[1].Error = []byte(`{"type":"x"}`)
	if err := s.UpdateAuthz(t.Context(), wantAuthz); err != nil {
		t.Fatalf("UpdateAuthz: %v", err)
	}
	wantAuthz.Challenges[1].Error[2] = 'X'
	if got := getAuthz(t, s, wantAuthz.ID); string(got.Challenges[1].Error) != `{"type":"x"}` {
		t.Fatal("changing an updated authz changed the stored one")
	}
}
