package caddyacmegw

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalConsoleEnv is a console with a registration, the account made
// with it, and a certificate of that account.
type renewalConsoleEnv struct {
	*consoleEnv
	kid, accountID, serial string
}

func newRenewalConsoleEnv(t *testing.T) *renewalConsoleEnv {
	t.Helper()
	e := newConsoleEnv(t, "dave")
	reg := e.createRegistration(map[string]any{"allowed_domains": []string{"example.com"}})
	mac, _ := base64.RawURLEncoding.DecodeString(reg.HMACKey)
	acct, id := e.g.mustAccount(reg.KeyID, mac)
	serial := e.g.issue(acct, "ari.example.com").SerialNumber.Text(16)
	return &renewalConsoleEnv{consoleEnv: e, kid: reg.KeyID, accountID: id, serial: serial}
}

// rules are the stored rules of one scope.
func (e *renewalConsoleEnv) rules(kind, value string) []*storage.RenewalRule {
	e.t.Helper()
	rules, err := e.g.store.RenewalRulesFor(context.Background(), []storage.RenewalScope{{Kind: kind, Value: value}})
	if err != nil {
		e.t.Fatal(err)
	}
	return rules
}

// allRules counts the rules of every scope the env's records have.
func (e *renewalConsoleEnv) allRules() int {
	return len(e.rules(storage.RenewalScopeCertificate, e.serial)) + len(e.rules(storage.RenewalScopeAccount, e.accountID)) +
		len(e.rules(storage.RenewalScopeRegistration, e.kid)) + len(e.rules(storage.RenewalScopeIssuer, ""))
}

// nothingStored fails unless the env has no rules and n audit entries.
func (e *renewalConsoleEnv) nothingStored(n int) {
	e.t.Helper()
	if got := e.allRules(); got != 0 {
		e.t.Fatalf("%d rules stored", got)
	}
	if got := len(e.auditEntries()); got != n {
		e.t.Fatalf("%d audit entries written", got-n)
	}
}

// TestConsole_MovesRenewalWindowsFromEachPage moves the windows of a
// certificate, an account, a registration and, after confirming, every
// certificate, each from its page: each move is a rule of its scope made
// by the officer, audited, and listed on the page; the certificate's page
// shows its moved window.
func TestConsole_MovesRenewalWindowsFromEachPage(t *testing.T) {
	e := newRenewalConsoleEnv(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(time.Hour)
	const explanation = "https://status.example.com/incident-7"
	steps := []struct {
		page, kind, value string
		form              url.Values
	}{
		{"/certificates/" + e.serial, storage.RenewalScopeCertificate, e.serial, url.Values{
			"explanation_url": {explanation}, "window_start": {start.Format("2006-01-02T15:04")}, "window_end": {end.Format(time.RFC3339)}}},
		{"/accounts/" + e.accountID, storage.RenewalScopeAccount, e.accountID, url.Values{}},
		{"/registrations/" + e.kid, storage.RenewalScopeRegistration, e.kid, url.Values{"explanation_url": {explanation}}},
	}
	for _, s := range steps {
		action := `action="/console` + s.page + `/renewal"`
		if status, body := e.get(s.page); status != http.StatusOK || !strings.Contains(body, action) || !strings.Contains(body, "None yet.") {
			t.Fatalf("%s: %d, or no renewal form %s with no rules yet:\n%s", s.page, status, action, body)
		}
		status, body := e.post(s.page+"/renewal", s.form)
		if status != http.StatusSeeOther {
			t.Fatalf("move from %s: %d\n%s", s.page, status, body)
		}
		rules := e.rules(s.kind, s.value)
		if len(rules) != 1 || rules[0].CreatedBy != "dave" || rules[0].ExplanationURL != s.form.Get("explanation_url") || !rules[0].WindowEnd.Before(time.Now()) {
			t.Fatalf("rules of %s %s: %+v", s.kind, s.value, rules)
		}
		entries := e.auditEntries()
		if last := entries[len(entries)-1]; last.Action != "renewal.move" || last.Actor != "dave" || last.Target != s.kind+":"+s.value {
			t.Fatalf("audit entry %+v", last)
		}
		if _, body := e.get(s.page); strings.Contains(body, "None yet.") || !strings.Contains(body, `<td>dave</td>`) {
			t.Fatalf("%s does not list the rule made:\n%s", s.page, body)
		}
		if s.kind == storage.RenewalScopeCertificate {
			_, body := e.get(s.page)
			for _, want := range []string{
				`<dd id="window-start"><time datetime="` + start.Format(time.RFC3339) + `"`,
				`<dd id="window-end"><time datetime="` + end.Format(time.RFC3339) + `"`,
				`<a href="` + explanation + `" rel="noreferrer">`,
			} {
				if !strings.Contains(body, want) {
					t.Fatalf("the certificate's page does not show %s:\n%s", want, body)
				}
			}
		}
	}

	status, body := e.get("/renewal")
	if status != http.StatusOK || !strings.Contains(body, "every certificate of this gateway") || !strings.Contains(body, `action="/console/renewal"`) {
		t.Fatalf("the issuer-wide confirmation: %d\n%s", status, body)
	}
	if n := len(e.rules(storage.RenewalScopeIssuer, "")); n != 0 {
		t.Fatalf("asking for confirmation made %d rules", n)
	}
	if status, body := e.post("/renewal", url.Values{"explanation_url": {explanation}}); status != http.StatusSeeOther {
		t.Fatalf("issuer-wide move: %d\n%s", status, body)
	}
	if rules := e.rules(storage.RenewalScopeIssuer, ""); len(rules) != 1 || rules[0].CreatedBy != "dave" || rules[0].ExplanationURL != explanation {
		t.Fatalf("issuer rules: %+v", rules)
	}
	if _, body := e.get("/audit?action=renewal.move"); strings.Count(body, `<td>renewal.move</td>`) != 4 || !strings.Contains(body, `<code>issuer</code>`) {
		t.Fatalf("the audit page does not list the four moves:\n%s", body)
	}
	if _, body := e.get("/renewal"); strings.Contains(body, "None yet.") {
		t.Fatalf("the issuer-wide confirmation does not list the rule made:\n%s", body)
	}
}

func TestConsole_RenewalMoveRefusedWithoutToken(t *testing.T) {
	e := newRenewalConsoleEnv(t)
	e.get("/certificates/" + e.serial)
	n := len(e.auditEntries())
	for _, path := range []string{"/certificates/" + e.serial + "/renewal", "/accounts/" + e.accountID + "/renewal", "/registrations/" + e.kid + "/renewal", "/renewal"} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console"+path, strings.NewReader("explanation_url=https%3A%2F%2Fexample.com%2F"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if status, body := e.send(req); status != http.StatusForbidden || !strings.Contains(body, "does not carry the console&#39;s token") {
			t.Fatalf("POST %s without the token: %d\n%s", path, status, body)
		}
	}
	e.nothingStored(n)
}

func TestConsole_RenewalMoveShowsErrors(t *testing.T) {
	e := newRenewalConsoleEnv(t)
	n := len(e.auditEntries())
	tests := []struct {
		path string
		form url.Values
		want string
	}{
		{"/certificates/" + e.serial + "/renewal", url.Values{"explanation_url": {"see the wiki"}}, "explanation_url must be an http or https URL"},
		{"/accounts/" + e.accountID + "/renewal", url.Values{"explanation_url": {"javascript:alert(1)"}}, "explanation_url must be an http or https URL"},
		{"/registrations/" + e.kid + "/renewal", url.Values{"window_start": {"2030-01-02T00:00"}, "window_end": {"2030-01-01T00:00"}}, "window_start must be before window_end"},
		{"/renewal", url.Values{"window_end": {"tomorrow"}}, "window_end must be a day like"},
		{"/certificates/ffff/renewal", url.Values{}, "not found"},
	}
	for _, tt := range tests {
		status, body := e.post(tt.path, tt.form)
		if status != http.StatusBadRequest && status != http.StatusNotFound || !strings.Contains(body, `<p class="problem" role="alert">`) || !strings.Contains(body, tt.want) {
			t.Errorf("POST %s %v: %d, want the problem %q:\n%s", tt.path, tt.form, status, tt.want, body)
		}
	}
	e.nothingStored(n)
}

func TestConsole_RenewalExplanationRendersInert(t *testing.T) {
	e := newRenewalConsoleEnv(t)
	const hostile = `https://example.com/"><script>alert(1)</script>`
	if status, body := e.post("/accounts/"+e.accountID+"/renewal", url.Values{"explanation_url": {hostile}}); status != http.StatusSeeOther {
		t.Fatalf("move: %d\n%s", status, body)
	}
	if rules := e.rules(storage.RenewalScopeAccount, e.accountID); len(rules) != 1 || rules[0].ExplanationURL != hostile {
		t.Fatalf("rules %+v", rules)
	}
	for _, page := range []string{"/accounts/" + e.accountID, "/certificates/" + e.serial} {
		status, body := e.get(page)
		if status != http.StatusOK || strings.Contains(body, "<script>alert") || strings.Contains(body, `"><script>`) || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("%s: %d, or the explanation is not escaped:\n%s", page, status, body)
		}
	}
}

// TestConsole_CertificatePageLinksReplacements renews a certificate with
// "replaces": each certificate's page links the other.
func TestConsole_CertificatePageLinksReplacements(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	acct, _ := e.g.mustAccount("", nil)
	old := e.g.issue(acct, "renewed.example.com")
	renewed, err := e.g.obtainReplacing(acct, "renewed.example.com", old)
	if err != nil {
		t.Fatalf("renewing: %v", err)
	}
	oldSerial, newSerial := old.SerialNumber.Text(16), renewed.SerialNumber.Text(16)
	for _, p := range []struct{ page, label, other string }{{oldSerial, "Replaced by", newSerial}, {newSerial, "Replaces", oldSerial}} {
		want := `<dt>` + p.label + `</dt><dd><a href="/console/certificates/` + p.other + `"><code>` + colonSerial(p.other) + `</code></a></dd>`
		if status, body := e.get("/certificates/" + p.page); status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("certificate %s: %d, no %s:\n%s", p.page, status, want, body)
		}
	}
}
