package caddyacmegw

import (
	"net/http"
	"testing"
)

// An officer searching accounts by contact may leave out "mailto:", in
// the admin API as in the console.
func TestAdmin_AccountsByBareEmailContact(t *testing.T) {
	e := newAdminEnv(t)
	_, id := e.g.mustAccount("", nil) // contact mailto:ops@example.com
	for _, contact := range []string{"mailto:ops@example.com", "ops@example.com"} {
		var page accountsPage
		e.must(http.StatusOK, http.MethodGet, "accounts?contact="+contact, nil, &page)
		if len(page.Accounts) != 1 || page.Accounts[0].ID != id {
			t.Fatalf("accounts with contact %s: %+v", contact, page.Accounts)
		}
	}
}
