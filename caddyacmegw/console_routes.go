package caddyacmegw

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
	// tokenOwner is whom the CSRF token is bound to: the officer, or ""
	// for one unauthenticated.
	tokenOwner string
}

type consoleRequestKey struct{}

func withConsoleRequest(ctx context.Context, q *consoleRequest) context.Context {
	return context.WithValue(ctx, consoleRequestKey{}, q)
}

// consoleHandler serves one console route; an error is shown as a page.
type consoleHandler func(w http.ResponseWriter, r *http.Request, q *consoleRequest) error

// routes is the console's one table of pages, relative to PathPrefix,
// which the handler strips. Every POST changes something and passes the
// CSRF check first.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h consoleHandler) { mux.Handle(pattern, c.serveRoute(h)) }
	handle("GET /{$}", consoleOverview)
	handle("GET /registrations", consoleRegistrations)
	// The form's path is not under /registrations/, where "new" is a key
	// id like any other.
	handle("GET /new-registration", consoleNewRegistration)
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
	return http.StripPrefix(c.PathPrefix, mux)
}

// csrfCookie holds the session's random, from which each officer's CSRF
// token is derived. Over TLS its name has the __Host- prefix, which
// browsers keep for a cookie set by this very host, Secure, for path "/":
// a sibling subdomain cannot plant one.
const (
	csrfCookie        = "acmegw_console_csrf"
	csrfCookieHostTLS = "__Host-" + csrfCookie
)

// maxConsoleForm bounds a form's body.
const maxConsoleForm = 64 << 10

// serveRoute gives the route its request, checks every change for
// forgery, and shows an error as a page.
func (c *Console) serveRoute(h consoleHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.Context().Value(consoleRequestKey{}).(*consoleRequest)
		q.csrf = c.csrfToken(w, r, q.base, q.tokenOwner)
		if r.Method == http.MethodPost {
			if status, err := checkChange(w, r, q.csrf); err != nil {
				c.pages.problem(w, status, err.Error())
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

// csrfCookieName is the session cookie's name for r: with the __Host-
// prefix over TLS.
func csrfCookieName(r *http.Request) string {
	if r.TLS != nil {
		return csrfCookieHostTLS
	}
	return csrfCookie
}

// csrfToken is the session's token for the officer: derived from the
// random in its cookie, or from a new one set in the cookie (HttpOnly,
// SameSite=Strict; over TLS Secure, with the __Host- prefix and path "/";
// over plain HTTP, on a private network, for the console's path and not
// Secure, since a browser would never send a Secure cookie back).
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request, base, actor string) string {
	if ck, err := r.Cookie(csrfCookieName(r)); err == nil && len(ck.Value) == 43 {
		return c.csrfFor(ck.Value, actor)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	session := base64.RawURLEncoding.EncodeToString(b)
	ck := &http.Cookie{Name: csrfCookie, Value: session, Path: base, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if r.TLS != nil {
		ck.Name, ck.Path, ck.Secure = csrfCookieHostTLS, "/", true
	}
	http.SetCookie(w, ck)
	return c.csrfFor(session, actor)
}

// csrfFor binds a session's token to the officer, so that a cookie and
// token made for one officer do not pass for another, and a cookie whose
// value another knows (planted over plain HTTP) gives them no token
// without the console's secret.
func (c *Console) csrfFor(session, actor string) string {
	m := hmac.New(sha256.New, c.csrfSecret)
	m.Write([]byte(session))
	m.Write([]byte{0})
	m.Write([]byte(actor))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var (
	errCrossSite  = errors.New("refused: this change comes from another site")
	errNoCSRF     = errors.New("refused: this change does not carry the console's token; reload the page and try again")
	errFormTooBig = errors.New("refused: the form is larger than the console accepts")
	errFormUnread = errors.New("refused: the form cannot be read")
)

// checkChange refuses, with the status to answer, a change that a browser
// says comes from another site (403), whose form is too large (413) or
// cannot be read (400), or whose form does not send back the token
// derived from the session's cookie (403; the double submit: another site
// can make a browser send the cookie but cannot read it nor the token),
// compared in constant time. A request without the cookie is refused by
// that comparison: csrfToken has then given it a new session, whose token
// no form carries yet.
func checkChange(w http.ResponseWriter, r *http.Request, token string) (int, error) {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return http.StatusForbidden, errCrossSite
	}
	// The pages' Referrer-Policy no-referrer makes browsers send "Origin:
	// null" with their forms; Sec-Fetch-Site and the token then decide.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, errCrossSite
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxConsoleForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, errFormTooBig
		}
		return http.StatusBadRequest, errFormUnread
	}
	sent := r.PostForm.Get("csrf")
	if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
		return http.StatusForbidden, errNoCSRF
	}
	return 0, nil
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

// nextPage is the link to a listing's next page, from cursor on, with the
// request's filters as they came; "" when there is none.
func (q *consoleRequest) nextPage(r *http.Request, cursor string, parts ...string) string {
	if cursor == "" {
		return ""
	}
	v := r.URL.Query()
	v.Set("cursor", cursor)
	return q.link(v, parts...)
}

// seeOther sends the browser to a page after a change (post/redirect/get),
// and returns nil, for a route to end with.
func seeOther(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// pageOf reads a listing's cursor from the query, with the admin API's
// page size.
func pageOf(r *http.Request) page {
	return page{cursor: r.URL.Query().Get("cursor"), limit: defaultPageLimit}
}
