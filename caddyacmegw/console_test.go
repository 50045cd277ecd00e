package caddyacmegw

import (
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestConsole_RefusesRequestsNamingNoOfficer(t *testing.T) {
	e := newConsoleEnv(t, "")
	status, body := e.get("/")
	if status != http.StatusForbidden || !strings.Contains(body, "this request names none") {
		t.Fatalf("without an identity: %d\n%s", status, body)
	}
}

func TestConsole_PassesOtherPathsOn(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/consoles", nil)
	if status, _ := e.send(req); status != http.StatusTeapot {
		t.Fatalf("a path outside the console: %d, want the next handler's", status)
	}
}

// TestConsole_RegistrationLifecycle creates, edits, disables, enables and
// deletes a registration through the console's forms, and finds each
// change in the admin API's view and audit trail.
func TestConsole_RegistrationLifecycle(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	status, body := e.post("/registrations", url.Values{"key_id": {"lifecycle"}, "allowed_domains": {"example.com\nexample.net"}, "description": {"first"}})
	if status != http.StatusOK || !strings.Contains(body, `id="hmac-key"`) || !strings.Contains(body, "--eab-kid=lifecycle") {
		t.Fatalf("create: %d\n%s", status, body)
	}
	if status, body := e.get("/registrations/lifecycle"); status != http.StatusOK || strings.Contains(body, "hmac") {
		t.Fatalf("the registration's page: %d, or it shows the key again:\n%s", status, body)
	}
	steps := []struct {
		path string
		form url.Values
		want func(*storage.Registration) bool
	}{
		{"/registrations/lifecycle", url.Values{"description": {"second"}, "allowed_domains": {"example.org"}, "expires": {"2099-01-02T03:04:05Z"}},
			func(r *storage.Registration) bool {
				return r.Description == "second" && len(r.AllowedDomains) == 1 && r.AllowedDomains[0] == "example.org" && r.Expires.Year() == 2099
			}},
		// An expiry sent back as shown stays; an emptied one is cleared.
		{"/registrations/lifecycle", url.Values{"description": {"third"}, "allowed_domains": {"example.org"}, "expires": {"2099-01-02T03:04:05Z"}, "expires_shown": {"2099-01-02T03:04:05Z"}},
			func(r *storage.Registration) bool { return r.Description == "third" && r.Expires.Year() == 2099 }},
		{"/registrations/lifecycle", url.Values{"description": {"third"}, "allowed_domains": {"example.org"}, "expires": {""}, "expires_shown": {"2099-01-02T03:04:05Z"}},
			func(r *storage.Registration) bool { return r.Expires.IsZero() }},
		{"/registrations/lifecycle/status", url.Values{"status": {"disabled"}}, func(r *storage.Registration) bool { return r.Status == storage.RegistrationDisabled }},
		{"/registrations/lifecycle/status", url.Values{"status": {"active"}}, func(r *storage.Registration) bool { return r.Status == storage.RegistrationActive }},
	}
	for _, s := range steps {
		if status, body := e.post(s.path, s.form); status != http.StatusSeeOther {
			t.Fatalf("POST %s %v: %d\n%s", s.path, s.form, status, body)
		}
		if reg := e.g.registration("lifecycle"); !s.want(reg) || reg.UpdatedBy != "dave" {
			t.Fatalf("after POST %s %v: %+v", s.path, s.form, reg)
		}
	}
	if status, body := e.get("/registrations/lifecycle/delete"); status != http.StatusOK || !strings.Contains(body, `action="/console/registrations/lifecycle/delete"`) {
		t.Fatalf("the delete confirmation: %d\n%s", status, body)
	}
	if status, _ := e.post("/registrations/lifecycle/delete", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("delete: %d", status)
	}
	if _, err := e.g.store.GetRegistration(context.Background(), "lifecycle"); err == nil {
		t.Fatal("the registration is still there")
	}
	var trail []string
	for _, a := range e.auditEntries() {
		trail = append(trail, a.Actor+" "+a.Action)
	}
	want := "dave registration.create\n" + strings.Repeat("dave registration.update\n", 5) + "dave registration.delete"
	if strings.Join(trail, "\n") != want {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(trail, "\n"), want)
	}
}

func TestConsole_DeactivatesAccountAfterConfirming(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	_, id := e.g.mustAccount("", nil)
	if status, body := e.get("/accounts/" + id + "/deactivate"); status != http.StatusOK || !strings.Contains(body, "Deactivate account") {
		t.Fatalf("the confirmation: %d\n%s", status, body)
	}
	if a, _ := e.g.store.GetAccount(context.Background(), id); a.Status != storage.StatusValid {
		t.Fatal("asking for confirmation changed the account")
	}
	if status, _ := e.post("/accounts/"+id+"/deactivate", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", status)
	}
	if a, _ := e.g.store.GetAccount(context.Background(), id); a.Status != storage.StatusDeactivated {
		t.Fatalf("account is %s", a.Status)
	}
	if status, body := e.post("/accounts/"+id+"/deactivate", url.Values{}); status != http.StatusConflict || !strings.Contains(body, "deactivated already") {
		t.Fatalf("deactivating twice: %d\n%s", status, body)
	}
}

func TestConsole_RevokeRefusesReasonsNotAllowed(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	acct, _ := e.g.mustAccount("", nil)
	serial := e.g.issue(acct, "reason.example.com").SerialNumber.Text(16)
	for _, reason := range []string{"2", "6", "x", ""} {
		if status, _ := e.post("/certificates/"+serial+"/revoke", url.Values{"reason": {reason}}); status != http.StatusBadRequest {
			t.Errorf("reason %q: %d, want 400", reason, status)
		}
	}
	if c, _ := e.g.store.GetCertificate(context.Background(), serial); c.Status != storage.StatusValid {
		t.Fatal("a refused reason revoked the certificate")
	}
	if status, body := e.get("/certificates/" + serial + "/pem"); status != http.StatusOK || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("PEM download: %d\n%.80s", status, body)
	}
}

func TestConsole_AuditFiltersByOfficerActionAndTime(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	e.post("/registrations", url.Values{"key_id": {"by-dave"}})
	e.officer = "erin"
	e.get("/new-registration") // a token is the officer's own
	e.post("/registrations", url.Values{"key_id": {"by-erin"}})
	e.post("/registrations/by-dave/status", url.Values{"status": {"disabled"}})
	now := time.Now().UTC()
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"dave registration.create by-dave", "erin registration.create by-erin", "erin registration.update by-dave"}},
		{"actor=erin", []string{"erin registration.create by-erin", "erin registration.update by-dave"}},
		{"action=registration.create", []string{"dave registration.create by-dave", "erin registration.create by-erin"}},
		{"action=registration.&actor=dave", []string{"dave registration.create by-dave"}},
		{"since=" + now.Add(time.Hour).Format("2006-01-02T15:04"), nil},
		{"until=" + now.Add(-time.Hour).Format("2006-01-02T15:04"), nil},
		{"since=" + now.Add(-time.Hour).Format("2006-01-02") + "&until=" + now.Add(48*time.Hour).Format("2006-01-02"), []string{
			"dave registration.create by-dave", "erin registration.create by-erin", "erin registration.update by-dave"}},
	}
	row := regexp.MustCompile(`<td class="actor">([^<]*)</td><td>([^<]*)</td><td><code>([^<]*)</code>`)
	for _, tt := range tests {
		status, body := e.get("/audit?" + tt.query)
		if status != http.StatusOK {
			t.Fatalf("%s: %d\n%s", tt.query, status, body)
		}
		var got []string
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1]+" "+m[2]+" "+m[3])
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("audit?%s:\n%s\nwant:\n%s", tt.query, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	if status, _ := e.get("/audit?since=yesterday"); status != http.StatusBadRequest {
		t.Fatalf("a time that is none: %d", status)
	}
}

func TestConsole_RefusesProfilesTheGatewayLacks(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	if status, body := e.post("/registrations", url.Values{"key_id": {"profiled"}, "profiles": {"tls-server"}}); status != http.StatusBadRequest || !strings.Contains(body, "this gateway has no profiles") {
		t.Fatalf("create with an unknown profile: %d\n%s", status, body)
	}
	e.post("/registrations", url.Values{"key_id": {"profiled"}})
	if status, body := e.post("/registrations/profiled", url.Values{"profiles": {"tls-server"}}); status != http.StatusBadRequest || !strings.Contains(body, "this gateway has no profiles") {
		t.Fatalf("edit to an unknown profile: %d\n%s", status, body)
	}
}

// TestConsole_CSRFTokenIsTheOfficers sends one officer's token with
// another's request, as a cookie planted for the first would: refused.
func TestConsole_CSRFTokenIsTheOfficers(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	e.get("/new-registration")
	e.officer = "erin"
	if status, body := e.post("/registrations", url.Values{"key_id": {"planted"}}); status != http.StatusForbidden || !strings.Contains(body, "refused") {
		t.Fatalf("dave's token with erin's request: %d, want 403\n%s", status, body)
	}
	e.get("/new-registration")
	if status, body := e.post("/registrations", url.Values{"key_id": {"own"}}); status != http.StatusOK {
		t.Fatalf("erin's own token: %d\n%s", status, body)
	}
}

// TestConsole_CSRFCookieFollowsTheConnection: over plain HTTP the cookie
// is not Secure, which a browser would never send back, and keeps to the
// console's path; over TLS it is Secure, for "/", with the __Host- prefix.
func TestConsole_CSRFCookieFollowsTheConnection(t *testing.T) {
	c := &Console{csrfSecret: []byte("secret")}
	for _, tt := range []struct {
		name   string
		tls    bool
		cookie http.Cookie
	}{
		{"plain HTTP", false, http.Cookie{Name: "acmegw_console_csrf", Path: "/console", Secure: false}},
		{"TLS", true, http.Cookie{Name: "__Host-acmegw_console_csrf", Path: "/", Secure: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/console/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			token := c.csrfToken(w, r, "/console", "dave")
			cks := w.Result().Cookies()
			if len(cks) != 1 {
				t.Fatalf("cookies set: %v", cks)
			}
			ck := cks[0]
			if ck.Name != tt.cookie.Name || ck.Path != tt.cookie.Path || ck.Secure != tt.cookie.Secure ||
				!ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Fatalf("cookie %+v, want %+v, HttpOnly, SameSite=Strict", ck, tt.cookie)
			}
			// The next request sends it back and gets the same token.
			r2 := httptest.NewRequest(http.MethodGet, "/console/", nil)
			r2.TLS = r.TLS
			r2.AddCookie(ck)
			if again := c.csrfToken(httptest.NewRecorder(), r2, "/console", "dave"); again != token || token == ck.Value {
				t.Fatalf("token %q, then %q, cookie %q: want one token, not the cookie's value", token, again, ck.Value)
			}
		})
	}
}

var consoleOnce = regexp.MustCompile(`name="once" value="([^"]+)"`)

// TestConsole_NewRegistrationFormCreatesOnce sends one new-registration
// form twice, as refreshing the page that shows the key does: the second
// makes nothing and says the registration was created. A form refused
// for a mistake can be corrected and sent again.
func TestConsole_NewRegistrationFormCreatesOnce(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	_, page := e.get("/new-registration")
	m := consoleOnce.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the form carries no nonce:\n%s", page)
	}
	before := len(e.auditEntries())
	if status, _ := e.post("/registrations", url.Values{"once": {m[1]}, "allowed_domains": {"not a domain!"}}); status != http.StatusBadRequest {
		t.Fatalf("a mistaken form: %d, want 400", status)
	}
	form := url.Values{"once": {m[1]}, "description": {"refreshed"}}
	status, body := e.post("/registrations", form)
	if status != http.StatusOK || !strings.Contains(body, `id="hmac-key"`) {
		t.Fatalf("the corrected form: %d\n%s", status, body)
	}
	kid := regexp.MustCompile(`--eab-kid=([A-Za-z0-9_-]+)`).FindStringSubmatch(body)
	if kid == nil {
		t.Fatalf("no key id on the created page:\n%s", body)
	}
	status, body = e.post("/registrations", form)
	if status != http.StatusConflict || !strings.Contains(body, "sent already") ||
		!strings.Contains(body, `href="/console/registrations"`) || !strings.Contains(body, `href="/console/registrations/`+kid[1]+`"`) ||
		strings.Contains(body, "hmac-key") {
		t.Fatalf("the form sent again: %d\n%s", status, body)
	}
	if n := len(e.auditEntries()) - before; n != 1 {
		t.Fatalf("%d changes audited, want the one registration", n)
	}
}

func TestOnceForms_ForgetsTheOldestAndTheExpired(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newOnceForms(func() time.Time { return now })
	f.max = 2
	for _, n := range []string{"a", "b"} {
		if _, fresh := f.claim(n); !fresh {
			t.Fatalf("%s: not fresh", n)
		}
	}
	f.done("a", "kid-a")
	if kid, fresh := f.claim("a"); fresh || kid != "kid-a" {
		t.Fatalf("a again: %q, fresh %v", kid, fresh)
	}
	if _, fresh := f.claim("c"); !fresh { // full: a is dropped
		t.Fatal("c: not fresh")
	}
	if _, fresh := f.claim("b"); fresh {
		t.Fatal("b was forgotten before its time")
	}
	now = now.Add(onceFormsTTL + time.Second)
	if _, fresh := f.claim("b"); !fresh {
		t.Fatal("b is remembered past its time")
	}
}

// TestConsole_UnauthenticatedChangesAcrossConnections: an unauthenticated
// console names the officer by address and port, which the next
// connection changes; the form's token still passes.
func TestConsole_UnauthenticatedChangesAcrossConnections(t *testing.T) {
	e := newConsoleEnv(t, "")
	e.console.UnauthenticatedIsIntended = true
	e.get("/new-registration")
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if status, body := e.post("/registrations", url.Values{"key_id": {"by-address"}}); status != http.StatusOK {
		t.Fatalf("a change on another connection: %d\n%s", status, body)
	}
	if reg := e.g.registration("by-address"); !strings.HasPrefix(reg.CreatedBy, "unauthenticated:127.0.0.1:") {
		t.Fatalf("created by %q", reg.CreatedBy)
	}
}

// TestConsole_NextPageKeepsTheSearch: a listing's next-page link goes on
// from its cursor with the search the page was asked for.
func TestConsole_NextPageKeepsTheSearch(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	for i := range defaultPageLimit + 1 {
		reg := &storage.Registration{KeyID: fmt.Sprintf("paged-%03d", i), HMACKey: []byte("key"), Description: "paged", Status: storage.RegistrationActive}
		if err := e.g.store.CreateRegistration(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
	}
	e.post("/registrations", url.Values{"key_id": {"zz-other"}})
	status, body := e.get("/registrations?q=paged")
	next := regexp.MustCompile(`href="/console(/registrations\?[^"]*)" rel="next"`).FindStringSubmatch(body)
	if status != http.StatusOK || next == nil {
		t.Fatalf("the first page: %d, or no next-page link:\n%s", status, body)
	}
	link, err := url.Parse(html.UnescapeString(next[1]))
	if err != nil || link.Query().Get("q") != "paged" || link.Query().Get("cursor") == "" {
		t.Fatalf("next-page link %q: want the search and a cursor", next[1])
	}
	status, body = e.get(link.String())
	if status != http.StatusOK || !strings.Contains(body, fmt.Sprintf(">paged-%03d<", defaultPageLimit)) ||
		strings.Contains(body, ">zz-other<") || strings.Contains(body, `rel="next"`) {
		t.Fatalf("the second page: %d\n%s", status, body)
	}
}

// TestConsole_RefusedFormsSayWhy: a form too large is 413, one that
// cannot be read 400, and one sent without the session's cookie, whose
// token then matches no session, is refused as a forgery.
func TestConsole_RefusedFormsSayWhy(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	e.get("/new-registration")
	token := url.Values{"csrf": {e.token}}.Encode()
	send := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/registrations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return e.send(req)
	}
	if status, body := send(token + "&description=" + strings.Repeat("x", maxConsoleForm)); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than") {
		t.Errorf("a form too large: %d, want 413\n%s", status, body)
	}
	if status, body := send(token + "&description=%zz"); status != http.StatusBadRequest || !strings.Contains(body, "cannot be read") {
		t.Errorf("a form that cannot be read: %d, want 400\n%s", status, body)
	}
	e.cookie = nil
	if status, body := send(token + "&key_id=no-cookie"); status != http.StatusForbidden || !strings.Contains(body, "does not carry the console&#39;s token") {
		t.Errorf("a form without the cookie: %d, want 403\n%s", status, body)
	}
	if n := len(e.auditEntries()); n != 0 {
		t.Fatalf("%d changes made by refused forms", n)
	}
}

// TestConsole_OpensARegistrationNamedNew: "new" is a key id like any
// other, and its page is the registration's, not the creation form.
func TestConsole_OpensARegistrationNamedNew(t *testing.T) {
	e := newConsoleEnv(t, "dave")
	if status, body := e.post("/registrations", url.Values{"key_id": {"new"}, "description": {"named new"}}); status != http.StatusOK {
		t.Fatalf("create: %d\n%s", status, body)
	}
	status, body := e.get("/registrations/new")
	if status != http.StatusOK || !strings.Contains(body, "Registration new") || !strings.Contains(body, "named new") || consoleOnce.MatchString(body) {
		t.Fatalf("the registration's page: %d\n%s", status, body)
	}
	if status, _ := e.post("/registrations/new", url.Values{"description": {"edited"}}); status != http.StatusSeeOther || e.g.registration("new").Description != "edited" {
		t.Fatalf("edit: %d", status)
	}
}
