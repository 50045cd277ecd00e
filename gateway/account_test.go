package gateway

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestCheckContacts(t *testing.T) {
	many := func(n int) []string {
		c := make([]string, n)
		for i := range c {
			c[i] = "mailto:admin" + strings.Repeat("x", i) + "@example.com"
		}
		return c
	}
	tests := []struct {
		name     string
		contacts []string
		wantType string // "" when accepted
	}{
		{"none", nil, ""},
		{"empty list", []string{}, ""},
		{"one mailto", []string{"mailto:admin@example.com"}, ""},
		{"two mailtos", []string{"mailto:admin@example.com", "mailto:ops@sub.example.org"}, ""},
		{"plus and dots in the local part", []string{"mailto:first.last+acme@example.com"}, ""},
		{"ten contacts", many(10), ""},
		{"eleven contacts", many(11), "invalidContact"},
		{"tel is unsupported", []string{"tel:+12025550100"}, "unsupportedContact"},
		{"https is unsupported", []string{"https://example.com/contact"}, "unsupportedContact"},
		{"bare address without scheme", []string{"admin@example.com"}, "unsupportedContact"},
		{"empty string", []string{""}, "unsupportedContact"},
		{"tel after a good mailto", []string{"mailto:admin@example.com", "tel:+12025550100"}, "unsupportedContact"},
		{"empty address", []string{"mailto:"}, "invalidContact"},
		{"no at sign", []string{"mailto:admin"}, "invalidContact"},
		{"no local part", []string{"mailto:@example.com"}, "invalidContact"},
		{"single-label domain", []string{"mailto:admin@localhost"}, "invalidContact"},
		{"domain with a trailing dot", []string{"mailto:admin@example.com."}, "invalidContact"},
		{"domain with a leading dot", []string{"mailto:admin@.example.com"}, "invalidContact"},
		{"hfields subject", []string{"mailto:admin@example.com?subject=hello"}, "invalidContact"},
		{"hfields cc", []string{"mailto:admin@example.com?cc=evil@example.net"}, "invalidContact"},
		{"comma list", []string{"mailto:admin@example.com,ops@example.com"}, "invalidContact"},
		{"semicolon list", []string{"mailto:admin@example.com;ops@example.com"}, "invalidContact"},
		{"display name", []string{"mailto:Admin <admin@example.com>"}, "invalidContact"},
		{"angle brackets", []string{"mailto:<admin@example.com>"}, "invalidContact"},
		{"space in local part", []string{"mailto:ad min@example.com"}, "invalidContact"},
		{"header injection", []string{"mailto:admin@example.com\r\nBcc: evil@example.net"}, "invalidContact"},
		{"percent-encoded at sign", []string{"mailto:admin%40example.com"}, "invalidContact"},
		{"two at signs", []string{"mailto:a@b@example.com"}, "invalidContact"},
		{"address longer than 254", []string{"mailto:" + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com"}, "invalidContact"},
		{"bad one after a good one", []string{"mailto:admin@example.com", "mailto:admin"}, "invalidContact"},
		{"right-to-left override", []string{"mailto:admin\u202e@example.com"}, "invalidContact"},
		{"bell", []string{"mailto:admin\u0007@example.com"}, "invalidContact"},
		{"zero-width joiner in the domain", []string{"mailto:admin@exa\u200dmple.com"}, "invalidContact"},
		{"delete character", []string{"mailto:admin\u007f@example.com"}, "invalidContact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkContacts(tt.contacts)
			if tt.wantType == "" {
				if err != nil {
					t.Fatalf("checkContacts(%q) = %v, want accepted", tt.contacts, err)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("checkContacts(%q) = %v, want a %s problem", tt.contacts, err, tt.wantType)
			}
			if p.Type != problemNS+tt.wantType || p.Status != http.StatusBadRequest {
				t.Fatalf("checkContacts(%q) = %s (%d), want %s (400)", tt.contacts, p.Type, p.Status, tt.wantType)
			}
		})
	}
}

func TestNewAccount_RefusesBadContactAndCreatesNothing(t *testing.T) {
	tests := []struct {
		contact  string
		wantType string
	}{
		{"tel:+12025550100", "unsupportedContact"},
		{"mailto:admin@example.com?subject=x", "invalidContact"},
	}
	for _, tt := range tests {
		t.Run(tt.wantType, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			r := c.post(g.base+pathNewAccount, map[string]any{"termsOfServiceAgreed": true, "contact": []string{tt.contact}})
			if r.status != http.StatusBadRequest || r.problemType() != problemNS+tt.wantType {
				t.Fatalf("newAccount with %q: %d %s", tt.contact, r.status, r.body)
			}
			r = c.post(g.base+pathNewAccount, map[string]any{"onlyReturnExisting": true})
			if r.problemType() != problemNS+"accountDoesNotExist" {
				t.Fatalf("an account was created despite the refusal: %d %s", r.status, r.body)
			}
		})
	}
}

func TestAccountUpdate_BadContactLeavesContactsUnchanged(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	r := c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.com", "tel:+12025550100"}})
	if r.status != http.StatusBadRequest || r.problemType() != problemNS+"unsupportedContact" {
		t.Fatalf("update with tel: %d %s", r.status, r.body)
	}
	var a accountBody
	c.post(c.kid, nil).decode(t, &a)
	if !slices.Equal(a.Contact, []string{"mailto:admin@example.com"}) {
		t.Fatalf("contacts changed to %v", a.Contact)
	}
	r = c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.com"}})
	r.decode(t, &a)
	if r.status != http.StatusOK || !slices.Equal(a.Contact, []string{"mailto:new@example.com"}) {
		t.Fatalf("good update: %d %s", r.status, r.body)
	}
}

func TestAccount_UpdateWithWholeAccountAndCurrentStatusChangesNothing(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	ctx := context.Background()
	before, err := g.store.GetAccount(ctx, orderID(c.kid))
	if err != nil {
		t.Fatal(err)
	}
	var read map[string]any
	c.post(c.kid, nil).decode(t, &read)
	if read["status"] != storage.StatusValid {
		t.Fatalf("account reads %v", read)
	}

	// Clients such as lego post back the account object they read.
	r := c.post(c.kid, read)
	if r.status != http.StatusOK {
		t.Fatalf("posting the account back: %d %s", r.status, r.body)
	}
	var updated map[string]any
	r.decode(t, &updated)
	if !reflect.DeepEqual(updated, read) {
		t.Fatalf("account changed:\nread    %v\nupdated %v", read, updated)
	}
	after, err := g.store.GetAccount(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != before.Status || after.KeyThumbprint != before.KeyThumbprint || !slices.Equal(after.Contact, before.Contact) {
		t.Fatalf("stored account moved from %+v to %+v", before, after)
	}
}
