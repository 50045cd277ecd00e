package caddyacmegw

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// consoleRequest is one request to the console: who asks, on which
// gateway, under which path, with which CSRF token.
type consoleRequest struct {
	console *Console
	officer *officer
	base    string
	csrf    string
}

type consoleRequestKey struct{}

func withConsoleRequest(ctx context.Context, q *consoleRequest) context.Context {
	return context.WithValue(ctx, consoleRequestKey{}, q)
}

// consoleHandler serves one console route; an error is shown as a page.
type consoleHandler func(w http.ResponseWriter, r *http.Request, q *consoleRequest) error

// routes is the console's one table of pages, relative to PathPrefix.
// Every POST changes something and passes the CSRF check first.
func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h consoleHandler) { mux.Handle(pattern, c.serveRoute(h)) }
	handle("GET /{$}", consoleOverview)
	handle("GET /registrations", consoleRegistrations)
	handle("GET /registrations/new", consoleNewRegistration)
	handle("POST /registrations", consoleCreateRegistration)
	handle("GET /registrations/{kid}", consoleRegistration)
	handle("POST /registrations/{kid}", consoleUpdateRegistration)
	handle("POST /registrations/{kid}/status", consoleRegistrationStatus)
	handle("GET /registrations/{kid}/delete", consoleConfirmDeleteRegistration)
	handle("POST /registrations/{kid}/delete", consoleDeleteRegistration)
	handle("POST /registrations/{kid}/renewal", consoleScopeRenewal(storage.RenewalScopeRegistration, "kid", "registrations"))
	handle("GET /accounts", consoleAccounts)
	handle("GET /accounts/{id}", consoleAccount)
	handle("GET /accounts/{id}/deactivate", consoleConfirmDeactivate)
	handle("POST /accounts/{id}/deactivate", consoleDeactivate)
	handle("POST /accounts/{id}/renewal", consoleScopeRenewal(storage.RenewalScopeAccount, "id", "accounts"))
	handle("GET /certificates", consoleCertificates)
	handle("GET /certificates/{serial}", consoleCertificate)
	handle("GET /certificates/{serial}/pem", consoleCertificatePEM)
	handle("GET /certificates/{serial}/revoke", consoleConfirmRevoke)
	handle("POST /certificates/{serial}/revoke", consoleRevoke)
	handle("POST /certificates/{serial}/renewal", consoleScopeRenewal(storage.RenewalScopeCertificate, "serial", "certificates"))
	handle("GET /renewal", consoleConfirmIssuerRenewal)
	handle("POST /renewal", consoleIssuerRenewal)
	handle("GET /audit", consoleAudit)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(consoleStatic)))
	return mux
}

// csrfCookie holds the session's CSRF token, which every form sends back.
const csrfCookie = "acmegw_console_csrf"

// maxConsoleForm bounds a form's body.
const maxConsoleForm = 64 << 10

// serveRoute gives the route its request, checks every change for
// forgery, and shows an error as a page.
func (c *Console) serveRoute(h consoleHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.Context().Value(consoleRequestKey{}).(*consoleRequest)
		q.csrf = csrfToken(w, r, q.base)
		if r.Method == http.MethodPost {
			if err := checkSameOrigin(r, q.csrf); err != nil {
				c.pages.problem(w, http.StatusForbidden, err.Error())
				return
			}
		}
		if err := h(w, r, q); err != nil {
			status, msg := http.StatusInternalServerError, "internal error"
			var ae caddy.APIError
			if errors.As(err, &ae) {
				status = ae.HTTPStatus
				if ae.Message != "" {
					msg = ae.Message
				}
			}
			if status >= 500 {
				c.logger.Error("console request failed", zap.String("path", r.URL.Path), zap.Error(err))
			}
			c.pages.problem(w, status, msg)
		}
	})
}

// csrfToken is the session's token from its cookie, or a new one set in
// the cookie: random, HttpOnly, Secure, SameSite=Strict, for the console's
// path only.
func csrfToken(w http.ResponseWriter, r *http.Request, base string) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: tok, Path: base,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	return tok
}

var (
	errCrossSite = errors.New("refused: this change comes from another site")
	errNoCSRF    = errors.New("refused: this change does not carry the console's token; reload the page and try again")
)

// checkSameOrigin refuses a change that a browser says comes from another
// site, and one whose form does not send back the cookie's token (the
// double submit: another site can make a browser send the cookie but
// cannot read it), compared in constant time.
func checkSameOrigin(r *http.Request, token string) error {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return errCrossSite
	}
	// The pages' Referrer-Policy no-referrer makes browsers send "Origin:
	// null" with their forms; Sec-Fetch-Site and the token then decide.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errCrossSite
		}
	}
	ck, err := r.Cookie(csrfCookie)
	if err != nil {
		return errNoCSRF
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxConsoleForm)
	if err := r.ParseForm(); err != nil {
		return errors.New("refused: the form cannot be read")
	}
	sent := r.PostForm.Get("csrf")
	if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(ck.Value)) != 1 {
		return errNoCSRF
	}
	return nil
}

// link is a console URL: base, the path's parts escaped, and a query.
func (q *consoleRequest) link(query url.Values, parts ...string) string {
	p := q.base
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	if len(query) > 0 {
		p += "?" + query.Encode()
	}
	return p
}

// seeOther sends the browser to a page after a change (post/redirect/get).
func (q *consoleRequest) seeOther(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// pageOf reads a listing's cursor from the query, with the admin API's
// page size.
func pageOf(r *http.Request) page {
	return page{cursor: r.URL.Query().Get("cursor"), limit: defaultPageLimit}
}
