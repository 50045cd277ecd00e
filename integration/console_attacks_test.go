package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/mholt/acmez/v3/acme"
)

// What an attacker controls in the console's pages: a registration's
// description (from whoever asked an officer for one), an account's
// contact (from the ACME client), and any link an officer may be sent.
const hostile = `</textarea><script>window.__injected=1</script>"'><img src=x onerror="window.__injected=2">`

// consoleAttacks runs in the browser and Caddy of
// TestConsole_OfficerEnrollsFindsRevokesAndIsAudited.
func consoleAttacks(t *testing.T, e *consoleEnv, b *browserSession) {
	t.Run("hostile description and contacts render inert", func(t *testing.T) {
		b.open(t, e.base+"/new-registration", "#description")
		b.do(t,
			chromedp.SetValue(chromedp.ID("#description"), hostile),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID("#key-id")),
		)
		kid := read(t, b.ctx, chromedp.Text(chromedp.ID("#key-id")))
		b.open(t, e.base+"/registrations?q="+url.QueryEscape("window.__injected"), "table")
		wantText(t, b, `td.desc`, hostile)
		b.open(t, e.base+"/registrations/"+kid, "#description")
		if got := read(t, b.ctx, chromedp.Value(chromedp.ID("#description"))); got != hostile {
			t.Fatalf("the edit form holds %q, want %q", got, hostile)
		}
		wantNoScriptRan(t, b)

		// The gateway refuses "<", ";" and '"' in a contact; what it lets
		// through must stay as it is: unescaped, "&lt" would show as "<".
		const contact = "mailto:o'hara&lt&gt@example.com"
		c, _ := acmezClient(newACMEEnv(e.g, nil, nil), acme.ChallengeTypeHTTP01)
		if _, err := c.NewAccount(t.Context(), acme.Account{Contact: []string{contact}, TermsOfServiceAgreed: true, PrivateKey: newKey(t)}); err != nil {
			t.Fatalf("new account: %v", err)
		}
		b.open(t, e.base+"/accounts?contact="+url.QueryEscape(contact), "table")
		wantText(t, b, `td.desc`, contact)

		// A link sent to an officer carries its search back into the page.
		b.open(t, e.base+"/accounts?contact="+url.QueryEscape(hostile), "#contact")
		if got := read(t, b.ctx, chromedp.Value(chromedp.ID("#contact"))); got != hostile {
			t.Fatalf("the search field holds %q, want %q", got, hostile)
		}
		wantNoScriptRan(t, b)
		b.shot(t, "hostile-search")
	})

	t.Run("a change without the CSRF token is refused", func(t *testing.T) {
		before := len(e.g.admin().registrations(t))
		o := newConsoleClient(t, e)
		token := o.token(t)
		form := func(withToken bool) url.Values {
			v := url.Values{"description": {"forged"}}
			if withToken {
				v.Set("csrf", token)
			}
			return v
		}
		refusals := []struct {
			name    string
			form    url.Values
			cookie  bool
			headers map[string]string
		}{
			{"no token", form(false), true, nil},
			{"a wrong token", url.Values{"csrf": {strings.Repeat("A", 43)}}, true, nil},
			{"no cookie", form(true), false, nil},
			{"from another site", form(true), true, map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{"another origin", form(true), true, map[string]string{"Origin": "https://evil.example"}},
		}
		for _, r := range refusals {
			status, body := o.post(t, "/registrations", r.form, r.cookie, r.headers)
			if status != http.StatusForbidden || !strings.Contains(body, "refused") {
				t.Errorf("%s: %d, want 403 saying it is refused", r.name, status)
			}
		}
		if n := len(e.g.admin().registrations(t)); n != before {
			t.Fatalf("%d registrations made by refused changes", n-before)
		}
		// The same change with its token goes through.
		if status, _ := o.post(t, "/registrations", form(true), true, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}); status != http.StatusOK {
			t.Fatalf("the change with its token: %d", status)
		}
		if n := len(e.g.admin().registrations(t)); n != before+1 {
			t.Fatalf("%d registrations made by the change with its token, want 1", n-before)
		}
	})

	t.Run("pages send the CSP and no-framing headers", func(t *testing.T) {
		o := newConsoleClient(t, e)
		for _, path := range []string{"/", "/registrations", "/new-registration", "/accounts", "/certificates", "/audit", "/static/console.css", "/no-such-page"} {
			resp := o.get(t, path)
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s: CSP %q lacks %s", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: CSP %q allows inline code", path, csp)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q, Referrer-Policy %q", path,
					h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
			}
		}
		// Without credentials basic_auth answers, not the console.
		resp, err := e.g.HTTPClient().Get(e.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("without credentials: %d", resp.StatusCode)
		}
	})
}

// wantText fails unless the first element sel shows text literally.
func wantText(t *testing.T, b *browserSession, sel, text string) {
	t.Helper()
	if got := read(t, b.ctx, chromedp.Text(chromedp.CSS(sel))); got != text {
		t.Fatalf("%s shows %q, want %q", sel, got, text)
	}
}

// wantNoScriptRan fails when a script or handler planted in the page ran.
func wantNoScriptRan(t *testing.T, b *browserSession) {
	t.Helper()
	if ran := read(t, b.ctx, chromedp.Evaluate[bool](`window.__injected !== undefined`)); ran {
		t.Fatal("a script planted in the page ran")
	}
	if n := read(t, b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)); n != 0 {
		t.Fatalf("%d planted elements in the page", n)
	}
}

// consoleClient is the officer's plain HTTP client, with a cookie jar.
type consoleClient struct {
	e *consoleEnv
	c *http.Client
}

func newConsoleClient(t *testing.T, e *consoleEnv) *consoleClient {
	t.Helper()
	c := e.g.HTTPClient()
	jar, _ := cookiejar.New(nil)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &consoleClient{e: e, c: c}
}

func (o *consoleClient) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	req.Header.Set("Authorization", basicAuth(consoleOfficer, consolePassword))
	resp, err := o.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}

func (o *consoleClient) get(t *testing.T, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, o.e.base+path, nil)
	resp, _ := o.do(t, req)
	return resp
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token loads a form, which sets the session's cookie, and returns the
// token the form carries.
func (o *consoleClient) token(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, o.e.base+"/new-registration", nil)
	_, body := o.do(t, req)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the form carries no CSRF token")
	}
	return m[1]
}

// post sends a form, with or without the session's cookie.
func (o *consoleClient) post(t *testing.T, path string, form url.Values, cookie bool, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := o.c
	if !cookie {
		c = &http.Client{Transport: o.c.Transport, CheckRedirect: o.c.CheckRedirect}
	}
	req.Header.Set("Authorization", basicAuth(consoleOfficer, consolePassword))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
