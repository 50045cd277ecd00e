package caddyacmegw

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// consoleEnv is a console on an admin test gateway, served over HTTP by a
// test server that plays the authentication in front of it: it sets
// {http.auth.user.id} to officer, unless officer is "".
type consoleEnv struct {
	*adminEnv
	console *Console
	srv     *httptest.Server
	officer string
	cookie  *http.Cookie
	// token is the CSRF token of the last form read.
	token string
}

func newConsoleEnv(t *testing.T, officer string) *consoleEnv {
	t.Helper()
	ae := newAdminEnv(t)
	c := &Console{Gateway: ae.g.h.Name, PathPrefix: "/console", Identity: "{http.auth.user.id}", logger: zap.NewNop()}
	pages, err := parseConsolePages()
	if err != nil {
		t.Fatal(err)
	}
	c.pages, c.handler = consolePages{base: c.PathPrefix, pages: pages}, c.routes()
	c.checked = new(atomic.Bool)
	c.checked.Store(true) // as the guard's Start does
	c.csrfSecret = []byte("the console's secret in its tests")
	c.once = newOnceForms(time.Now)
	e := &consoleEnv{adminEnv: ae, console: c, officer: officer}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddyhttp.NewTestReplacer(r)
		if e.officer != "" {
			repl.Set("http.auth.user.id", e.officer)
		}
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusTeapot)
			return nil
		})
		if err := c.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a console page and keeps the session's cookie.
func (e *consoleEnv) get(path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console"+path, nil)
	return e.send(req)
}

// post sends a form with the session's token, as the page's form does.
func (e *consoleEnv) post(path string, form url.Values) (int, string) {
	e.t.Helper()
	if e.cookie == nil || e.token == "" {
		e.get("/new-registration")
	}
	form.Set("csrf", e.token)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console"+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.send(req)
}

func (e *consoleEnv) send(req *http.Request) (int, string) {
	e.t.Helper()
	if e.cookie != nil {
		req.AddCookie(e.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == csrfCookie {
			e.cookie = &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if m := consoleCSRF.FindSubmatch(b); m != nil {
		e.token = string(m[1])
	}
	return resp.StatusCode, string(b)
}
