package integration

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	acmez "github.com/mholt/acmez/v3/acme"
)

// lego renews with "replaces" after an officer moved its certificate's
// window: the gateway records which certificate replaced which, as the
// admin API shows, and refuses a second order naming the replaced one
// with alreadyReplaced (lego then orders again without "replaces", and
// that certificate replaces nothing).
func TestLego_RenewalWithReplacesIsRecordedOnce(t *testing.T) {
	e := startACMEEnv(t)
	client, user, _ := legoRegister(t, e, "http-01")
	names := []string{"ari1.example.com", "ari2.example.com"}
	first := legoObtain(t, client, names...)
	leaf := parseChain(t, first.Certificate)[0]
	serial := leaf.SerialNumber.Text(16)
	ctx := t.Context()

	info, err := client.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	if at := info.ShouldRenewAt(time.Now(), time.Minute); at != nil {
		t.Fatalf("lego would renew a fresh certificate at %s", at)
	}
	admin := e.G.admin()
	admin.mustDo(t, http.MethodPost, "/renewal-rules", map[string]any{"scope": "account", "value": admin.certificate(t, serial).AccountID},
		http.StatusCreated, nil)
	info, err = client.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info after the move: %v", err)
	}
	if at := info.ShouldRenewAt(time.Now(), time.Minute); at == nil || at.After(time.Now()) {
		t.Fatalf("after the move lego would renew at %v, want now", at)
	}

	renew := func() string {
		t.Helper()
		res, err := client.Certificate.Renew(ctx, *first, &certificate.RenewOptions{Bundle: true, KeyType: certcrypto.EC256, UseARICertID: true})
		if err != nil {
			t.Fatalf("renewing: %v", err)
		}
		return parseChain(t, res.Certificate)[0].SerialNumber.Text(16)
	}
	second := renew()
	old, renewed := admin.certificate(t, serial), admin.certificate(t, second)
	if old.ReplacedBy != second || renewed.Replaces != serial {
		t.Fatalf("old %s replaced by %q, new %s replaces %q; want each other", serial, old.ReplacedBy, second, renewed.Replaces)
	}

	// The order itself is refused, as a client that does not retry sees.
	acct := acmez.Account{Location: user.reg.Location, PrivateKey: user.key}
	ac := &acmez.Client{Directory: e.G.Directory, HTTPClient: e.G.HTTPClient()}
	certID, err := acmez.ARIUniqueIdentifier(leaf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ac.NewOrder(ctx, acct, acmez.Order{Identifiers: []acmez.Identifier{{Type: "dns", Value: names[0]}}, Replaces: certID})
	var p acmez.Problem
	if !errors.As(err, &p) || p.Type != acmez.ProblemTypeAlreadyReplaced || p.Status != http.StatusConflict {
		t.Fatalf("second order replacing %s: %v, want 409 alreadyReplaced", serial, err)
	}

	third := renew() // lego drops "replaces" after the refusal
	if old, c := admin.certificate(t, serial), admin.certificate(t, third); old.ReplacedBy != second || c.Replaces != "" {
		t.Fatalf("after a second renewal: old replaced by %q, third replaces %q; want %q and none", old.ReplacedBy, c.Replaces, second)
	}
}
