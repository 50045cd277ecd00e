package caddyacmegw

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// contains fails t for each of want that out lacks.
func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// A registration from creation to deletion, with what each step does to
// the account made with it, and the trail it leaves.
func TestCommand_RegistrationLifecycle(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	e.mustCLI("register", "--domains", "example.com", "--key-id", "kid-cli", "--description", "two\nlines")
	acct, accountID := g.mustAccount("kid-cli", g.registration("kid-cli").HMACKey)

	contains(t, "registrations", e.mustCLI("registrations"), "KEY ID", "kid-cli", "active", "example.com", "never", accountID, "two lines")
	contains(t, "show", e.mustCLI("registrations", "show", "kid-cli"),
		"key id:           kid-cli", "status:           active", "account:          "+accountID, "by cli-officer")

	out := e.mustCLI("registrations", "edit", "kid-cli", "--domains", "example.com,example.net", "--expires", "2099-01-02T03:04:05Z", "--description", "team b")
	contains(t, "edit", out, "allowed domains:  example.com, example.net", "expires:          2099-01-02T03:04:05Z", "description:      team b", "changed:")
	e.mustCLI("registrations", "edit", "kid-cli", "--no-expiry")
	if reg := g.registration("kid-cli"); !reg.Expires.IsZero() || reg.Description != "team b" || len(reg.AllowedDomains) != 2 || reg.UpdatedBy != "cli-officer" {
		t.Fatalf("after edits: %+v", reg)
	}

	// Disabled: the account can no longer order, and the listing says so.
	out = e.mustCLI("registrations", "disable", "kid-cli")
	contains(t, "disable", out, "kid-cli is disabled", "Account "+accountID+" was made with it: it can no longer order certificates",
		"can still read its orders and certificates and\nrevoke them", "'registrations enable kid-cli' undoes this")
	if _, err := g.obtain(acct, "www.example.com"); err == nil || !strings.Contains(err.Error(), "registration is disabled") {
		t.Fatalf("ordering with a disabled registration: %v", err)
	}
	contains(t, "accounts", e.mustCLI("accounts"), "CAN ORDER", accountID+"  valid   no: registration disabled  kid-cli")
	var accts accountsPage
	e.mustJSON(&accts, "accounts", "--registration", "kid-cli")
	if len(accts.Accounts) != 1 || accts.Accounts[0].CanOrder || accts.Accounts[0].RegistrationStatus != "disabled" {
		t.Fatalf("accounts --json: %+v", accts)
	}

	contains(t, "enable", e.mustCLI("registrations", "enable", "kid-cli"), "kid-cli is active: account "+accountID+", made with it, can order again")
	g.issue(acct, "www.example.net")
	contains(t, "accounts", e.mustCLI("accounts"), accountID+"  valid   yes")

	var reg registrationView
	e.mustJSON(&reg, "registrations", "show", "kid-cli")
	if reg.KeyID != "kid-cli" || reg.Status != storage.RegistrationActive || reg.HMACKey != "" {
		t.Fatalf("show --json: %+v", reg)
	}

	out = e.mustCLI("registrations", "delete", "kid-cli")
	contains(t, "delete", out, "kid-cli is deleted", "Account "+accountID+" was made with it: it can no longer order certificates\nnor change its account, for good")
	if _, err := g.store.GetRegistration(context.Background(), "kid-cli"); err == nil {
		t.Fatal("registration still stored")
	}
	contains(t, "accounts show", e.mustCLI("accounts", "show", accountID), "can order:       no: registration removed", "registration:    kid-cli (removed)")
	if out := e.mustCLI("registrations", "--json"); !strings.Contains(out, `"registrations": []`) {
		t.Fatalf("registrations --json after delete:\n%s", out)
	}

	var trail auditPage
	e.mustJSON(&trail, "audit")
	var actions []string
	for _, a := range trail.Audit {
		if a.Actor != "cli-officer" || a.Target != "kid-cli" {
			t.Errorf("audit entry %+v", a)
		}
		actions = append(actions, a.Action)
	}
	want := "registration.create registration.update registration.update registration.update registration.update registration.delete"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("audit actions %s\nwant %s", got, want)
	}
	contains(t, "audit", e.mustCLI("audit"), "ACTOR", "cli-officer", "registration.delete")
}

// An account shows its orders and certificates; deactivating it is for
// good, and a second try is refused.
// --emails sets the addresses an account's certificates may carry, on
// register and on edit.
func TestCommand_RegistrationEmails(t *testing.T) {
	e := newAdminEnv(t)
	out := e.mustCLI("register", "--domains", "example.com", "--key-id", "kid-mail", "--emails", "pki@example.com,ops@example.com")
	contains(t, "register", out, "  e-mails:          ops@example.com, pki@example.com")
	out = e.mustCLI("registrations", "edit", "kid-mail", "--emails", "new@example.com")
	contains(t, "edit", out, "e-mails:          new@example.com")
	e.mustCLI("registrations", "edit", "kid-mail", "--emails", "")
	if got := e.g.registration("kid-mail").Emails; len(got) != 0 {
		t.Fatalf("emails after clearing: %q", got)
	}
}

func TestCommand_AccountShowAndDeactivate(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, id := g.mustAccount("", nil)
	leaf := g.issue(acct, "www.example.com")
	serial := opensslSerial(leaf.SerialNumber.Text(16))
	waiting := g.waitingOrder(id, "slow.example.com", time.Now().Add(-3*time.Minute))

	out := e.mustCLI("accounts", "show", id)
	contains(t, "accounts show", out, "id:              "+id, "can order:       yes", "registration:    none", "mailto:ops@example.com",
		"Orders:", "valid", "certificate "+serial, waiting.ID, "processing", "waiting on the CA for 3m", "request ca-request-slow.example.com",
		"Certificates:", serial+"  valid")
	var shown struct {
		Account      accountView      `json:"account"`
		Orders       ordersPage       `json:"orders"`
		Certificates certificatesPage `json:"certificates"`
	}
	e.mustJSON(&shown, "accounts", "show", id)
	if !shown.Account.CanOrder || len(shown.Orders.Orders) != 2 || len(shown.Certificates.Certificates) != 1 ||
		shown.Certificates.Certificates[0].Serial != leaf.SerialNumber.Text(16) {
		t.Fatalf("accounts show --json: %+v", shown)
	}

	contains(t, "deactivate", e.mustCLI("accounts", "deactivate", id), "Account "+id+" is deactivated, for good", "'certificates --account "+id+"'")
	contains(t, "accounts", e.mustCLI("accounts", "--status", "deactivated"), id, "no: account deactivated")
	e.cliFails("account "+id+" is deactivated already", "accounts", "deactivate", id)
	if entries := e.auditEntries(); len(entries) != 1 || entries[0].Action != "account.deactivate" || entries[0].Actor != "cli-officer" {
		t.Fatalf("audit %+v", entries)
	}
}

func TestCommand_OrdersWaitingOnTheCA(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, id := g.mustAccount("", nil)
	g.issue(acct, "done.example.com")
	_, other := g.mustAccount("", nil)
	w1 := g.waitingOrder(id, "one.example.com", time.Now().Add(-time.Hour))
	w2 := g.waitingOrder(other, "two.example.com", time.Now().Add(-time.Minute))

	out := e.mustCLI("orders", "--status", "processing")
	contains(t, "orders", out, "SINCE", w1.ID, w2.ID, "one.example.com", "two.example.com", "waiting on the CA for 1h0m", other)
	if strings.Contains(out, "done.example.com") {
		t.Fatalf("a valid order among the waiting ones:\n%s", out)
	}
	out = e.mustCLI("orders", "--status", "processing", "--limit", "1")
	contains(t, "first page", out, w1.ID, "--cursor ")
	var page ordersPage
	e.mustJSON(&page, "orders", "--account", other)
	if len(page.Orders) != 1 || page.Orders[0].ID != w2.ID || page.Orders[0].Status != storage.StatusProcessing {
		t.Fatalf("orders --json: %+v", page)
	}
}

// Serials print as openssl prints them and are taken in any hex form.
func TestCommand_CertificatesShowDownloadRevoke(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, id := g.mustAccount("", nil)
	leaf := g.issue(acct, "www.example.com")
	stored := leaf.SerialNumber.Text(16)
	serial := opensslSerial(stored)
	chain := e.mustCLI("certificates", "download", stored)
	if !strings.HasPrefix(chain, "-----BEGIN CERTIFICATE-----") || strings.Count(chain, "BEGIN CERTIFICATE") < 2 {
		t.Fatalf("download:\n%s", chain)
	}
	file := filepath.Join(t.TempDir(), "chain.pem")
	e.mustCLI("certificates", "download", serial, "--output", file)
	if b, err := os.ReadFile(file); err != nil || string(b) != chain {
		t.Fatalf("download --output: %v\n%s", err, b)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "x509", "-noout", "-serial", "-in", file)
		if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "serial="+serial {
			t.Fatalf("openssl says %q (%v), the command %q", out, err, serial)
		}
	}

	contains(t, "certificates", e.mustCLI("certificates", "--domain", "www.example.com"), "SERIAL", serial+"  valid", id)
	contains(t, "certificates --serial", e.mustCLI("certificates", "--serial", strings.ToLower(serial)), serial)
	contains(t, "show", e.mustCLI("certificates", "show", colons(serial)), "serial:      "+serial, "names:       www.example.com", "account:     "+id)
	out := e.mustCLI("certificates", "revoke", serial, "--reason", "4")
	contains(t, "revoke", out, "Certificate "+serial+" (www.example.com) is revoked at the CA, reason 4 (superseded)")
	if reason, ok := g.issuer.Revocation(stored); !ok || reason != 4 {
		t.Fatalf("issuer revocation %d, %v; want 4", reason, ok)
	}
	contains(t, "show", e.mustCLI("certificates", "show", serial), "status:      revoked at ", "reason 4 (superseded)")
	contains(t, "audit", e.mustCLI("audit"), "certificate.revoke  "+serial)
	e.cliFails("certificate "+stored+" is revoked already", "certificates", "revoke", serial)

	var certs certificatesPage
	e.mustJSON(&certs, "certificates", "--status", "revoked")
	if len(certs.Certificates) != 1 || certs.Certificates[0].Serial != stored {
		t.Fatalf("certificates --json: %+v", certs)
	}
}

// colons writes hex as x509 tools print fingerprints: "0A:1B:...".
func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Ids may begin with "-" in storage kept from before gateway.NewID avoided
// it; such an account is reached after "--", and the help says so.
func TestCommand_IDBeginningWithHyphen(t *testing.T) {
	e := newAdminEnv(t)
	id := "-legacyAccountId012345"
	acct := &storage.Account{ID: id, KeyThumbprint: "thumb-" + id, KeyJWK: []byte(`{}`), Status: storage.StatusValid, CreatedAt: time.Now()}
	if err := e.g.store.CreateAccount(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
	contains(t, "accounts show --", e.mustCLI("accounts", "show", "--", id), id, "valid")
	if _, errOut, err := e.cli("accounts", "show", id); err == nil || !strings.Contains(errOut, "unknown shorthand flag") {
		t.Fatalf("without --: %v\n%s", err, errOut)
	}
	contains(t, "help", e.mustCLI("accounts", "show", "--help"), `An argument that begins with "-" goes after "--": show -- -AbC`)
}
