package caddyacmegw

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// waitingOrder stores an order of accountID that waits on the CA since
// the given time, as finalize leaves it while the issuer has not answered.
func (g *testGateway) waitingOrder(accountID, name string, since time.Time) *storage.Order {
	g.t.Helper()
	o := &storage.Order{
		ID: gateway.NewID(), AccountID: accountID, Status: storage.StatusProcessing,
		Identifiers: []storage.Identifier{{Type: "dns", Value: name}},
		CreatedAt:   since.Add(-time.Minute), UpdatedAt: since, Expires: since.Add(time.Hour),
		IssuerRef: "ca-request-" + name,
	}
	if err := g.store.CreateOrder(context.Background(), o, nil); err != nil {
		g.t.Fatal(err)
	}
	return o
}

func TestAdmin_OrdersWaitingOnTheCAAcrossAccounts(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	reg := e.createRegistration(map[string]any{"allowed_domains": []string{"example.com"}})
	acct, bound := g.mustAccount(reg.KeyID, g.registration(reg.KeyID).HMACKey)
	leaf := g.issue(acct, "www.example.com")
	_, open1 := g.mustAccount("", nil)
	_, open2 := g.mustAccount("", nil)
	since := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	w1 := g.waitingOrder(open1, "one.example", since)
	w2 := g.waitingOrder(open2, "two.example", since)
	w3 := g.waitingOrder(open2, "three.example", since)

	// One entry a page: every waiting order once, none of the valid one.
	seen := map[string]orderView{}
	cursor := ""
	for pages := 0; ; pages++ {
		var page ordersPage
		e.must(http.StatusOK, http.MethodGet, "orders?status=processing&limit=1&cursor="+cursor, nil, &page)
		if len(page.Orders) > 1 || pages > 10 {
			t.Fatalf("page %+v", page)
		}
		for _, o := range page.Orders {
			if _, dup := seen[o.ID]; dup {
				t.Fatalf("order %s listed twice", o.ID)
			}
			seen[o.ID] = o
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(seen) != 3 || seen[w1.ID].AccountID != open1 || seen[w2.ID].IssuerRef != "ca-request-two.example" ||
		!seen[w3.ID].UpdatedAt.Equal(since) || seen[w3.ID].Identifiers[0].Value != "three.example" {
		t.Fatalf("waiting orders %+v", seen)
	}

	var page ordersPage
	e.must(http.StatusOK, http.MethodGet, "orders?account="+bound, nil, &page)
	if len(page.Orders) != 1 || page.Orders[0].Status != storage.StatusValid ||
		page.Orders[0].CertificateSerial != leaf.SerialNumber.Text(16) || page.Next != "" {
		t.Fatalf("orders of %s: %+v", bound, page)
	}
	e.must(http.StatusOK, http.MethodGet, "orders?account="+open2+"&status=valid", nil, &page)
	if len(page.Orders) != 0 {
		t.Fatalf("valid orders of %s: %+v", open2, page)
	}
	for path, want := range map[string]int{
		"orders?account=nope":  http.StatusNotFound,
		"orders?status=done":   http.StatusBadRequest,
		"orders?cursor=%21%21": http.StatusBadRequest,
		"orders?serial=1":      http.StatusBadRequest,
		"orders/" + w1.ID:      http.StatusNotFound,
	} {
		if status, raw := e.do(http.MethodGet, path, nil); status != want {
			t.Errorf("GET %s: %d %s, want %d", path, status, raw, want)
		}
	}
}

func TestAdmin_AccountSaysWhetherItCanOrder(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	reg := e.createRegistration(map[string]any{"allowed_domains": []string{"example.com"}})
	_, bound := g.mustAccount(reg.KeyID, g.registration(reg.KeyID).HMACKey)
	_, open := g.mustAccount("", nil)

	check := func(id string, canOrder bool, regStatus string) {
		t.Helper()
		var v accountView
		e.must(http.StatusOK, http.MethodGet, "accounts/"+id, nil, &v)
		if v.CanOrder != canOrder || v.RegistrationStatus != regStatus || v.Status != storage.StatusValid {
			t.Fatalf("account %s: %+v, want can_order %v, registration_status %q", id, v, canOrder, regStatus)
		}
	}
	check(bound, true, storage.RegistrationActive)
	check(open, true, "")

	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]string{"status": "disabled"}, nil)
	check(bound, false, storage.RegistrationDisabled)
	var list accountsPage
	e.must(http.StatusOK, http.MethodGet, "accounts?registration="+reg.KeyID, nil, &list)
	if len(list.Accounts) != 1 || list.Accounts[0].CanOrder || list.Accounts[0].RegistrationStatus != storage.RegistrationDisabled {
		t.Fatalf("listed %+v", list.Accounts)
	}

	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"status": "active", "expires": time.Now().Add(time.Hour).Format(time.RFC3339)}, nil)
	check(bound, true, storage.RegistrationActive)
	e.g.h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	check(bound, false, gateway.RegistrationExpired)
	e.g.h.now = time.Now

	e.must(http.StatusNoContent, http.MethodDelete, "registrations/"+reg.KeyID, nil, nil)
	check(bound, false, gateway.RegistrationRemoved)

	e.g.h.RegistrationMode = gateway.RegistrationPreregistered
	check(open, false, gateway.RegistrationMissing)
}
