package caddyacmegw

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves registration officers on Caddy's admin endpoint, under
// /acme-gateway/<name>/ for the gateway of that name:
//
//	GET    /acme-gateway/<name>/                         the gateway: name, path prefix, registration mode, directory URL if known
//	POST   /acme-gateway/<name>/registrations            create a pre-registration (answers its HMAC key, once)
//	GET    /acme-gateway/<name>/registrations            list them (?cursor=&limit=)
//	GET    /acme-gateway/<name>/registrations/<kid>      one of them
//	PATCH  /acme-gateway/<name>/registrations/<kid>      change domains, description, expiry, status, procedure, profiles
//	DELETE /acme-gateway/<name>/registrations/<kid>      remove it (the bound account stays)
//	GET    /acme-gateway/<name>/accounts                 list (?registration=&contact=&status=&cursor=&limit=)
//	GET    /acme-gateway/<name>/accounts/<id>            one account
//	POST   /acme-gateway/<name>/accounts/<id>/deactivate deactivate it
//	GET    /acme-gateway/<name>/orders                   list (?account=&status=&cursor=&limit=); status=processing: waiting on the CA
//	GET    /acme-gateway/<name>/certificates             list (?account=&name=&serial=&status=&cursor=&limit=)
//	GET    /acme-gateway/<name>/certificates/<serial>    one certificate with its PEM chain
//	POST   /acme-gateway/<name>/certificates/<serial>/revoke  {"reason": n} through the issuer
//	GET    /acme-gateway/<name>/certificates/<serial>/renewal-info  its window as clients get it now
//	POST   /acme-gateway/<name>/renewal-rules            move renewal windows of a scope (admin_renewal.go)
//	GET    /acme-gateway/<name>/renewal-rules            the rules of one scope (?scope=&value=)
//	GET    /acme-gateway/<name>/audit                    the audit trail, oldest first
//
// Every change appends an audit entry naming its actor: the subject of the
// TLS client certificate on Caddy's remote admin endpoint (mTLS), else the
// X-Acme-Gateway-Officer header, else "local:" and the remote address. The
// header is a label, not an authentication: whoever reaches the local admin
// endpoint may already do anything, and on the remote endpoint the
// certificate wins over it.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.acme_gateway",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// adminBase is the admin endpoint under which every gateway's API lives.
const adminBase = "/acme-gateway/"

// Limits on what officers send.
const (
	maxAdminBody     = 64 << 10
	defaultPageLimit = 50
	maxPageLimit     = 500
	maxActorLen      = 200
)

// officerHeader names the officer making a request on the local endpoint.
const officerHeader = "X-Acme-Gateway-Officer"

// Routes returns the admin routes of the ACME gateway.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminBase,
		Handler: caddy.AdminHandlerFunc(a.serve),
	}}
}

// adminRequest is one officer request, routed to its gateway.
type adminRequest struct {
	h     *Handler
	w     http.ResponseWriter
	r     *http.Request
	parts []string // the path below /acme-gateway/<name>/, split at "/"
}

// serve finds the gateway named in the path and routes to its resource.
func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, adminBase)
	name, rest, _ := strings.Cut(rest, "/")
	if name == "" {
		return apiError(http.StatusNotFound, "no gateway name in path; use %s<name>/...", adminBase)
	}
	h := gateways.get(name)
	if h == nil {
		return apiError(http.StatusNotFound, "no ACME gateway named %q is running", name)
	}
	rest = strings.TrimSuffix(rest, "/")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, "/")
	}
	for _, p := range parts {
		if p == "" {
			return apiError(http.StatusNotFound, "resource not found: %s", r.URL.Path)
		}
	}
	req := &adminRequest{h: h, w: w, r: r, parts: parts}
	return req.route()
}

func (q *adminRequest) route() error {
	p := q.parts
	switch {
	case len(p) == 0:
		return q.method(http.MethodGet, q.gatewayInfo)
	case p[0] == "registrations" && len(p) == 1:
		return q.method2(http.MethodGet, q.listRegistrations, http.MethodPost, q.createRegistration)
	case p[0] == "registrations" && len(p) == 2:
		switch q.r.Method {
		case http.MethodGet:
			return q.getRegistration(p[1])
		case http.MethodPatch:
			return q.patchRegistration(p[1])
		case http.MethodDelete:
			return q.deleteRegistration(p[1])
		}
		return methodNotAllowed(q.w, q.r, http.MethodGet, http.MethodPatch, http.MethodDelete)
	case p[0] == "accounts" && len(p) == 1:
		return q.method(http.MethodGet, q.listAccounts)
	case p[0] == "accounts" && len(p) == 2:
		return q.method(http.MethodGet, func() error { return q.getAccount(p[1]) })
	case p[0] == "accounts" && len(p) == 3 && p[2] == "deactivate":
		return q.method(http.MethodPost, func() error { return q.deactivateAccount(p[1]) })
	case p[0] == "orders" && len(p) == 1:
		return q.method(http.MethodGet, q.listOrders)
	case p[0] == "certificates" && len(p) == 1:
		return q.method(http.MethodGet, q.listCertificates)
	case p[0] == "certificates" && len(p) == 2:
		return q.method(http.MethodGet, func() error { return q.getCertificate(p[1]) })
	case p[0] == "certificates" && len(p) == 3 && p[2] == "revoke":
		return q.method(http.MethodPost, func() error { return q.revokeCertificate(p[1]) })
	case p[0] == "certificates" && len(p) == 3 && p[2] == "renewal-info":
		return q.method(http.MethodGet, func() error { return q.getRenewalInfo(p[1]) })
	case p[0] == "renewal-rules" && len(p) == 1:
		return q.method2(http.MethodGet, q.listRenewalRules, http.MethodPost, q.createRenewalRule)
	case p[0] == "audit" && len(p) == 1:
		return q.method(http.MethodGet, q.listAudit)
	}
	return apiError(http.StatusNotFound, "resource not found: %s", q.r.URL.Path)
}

func (q *adminRequest) method(m string, f func() error) error {
	if q.r.Method != m {
		return methodNotAllowed(q.w, q.r, m)
	}
	return f()
}

func (q *adminRequest) method2(m1 string, f1 func() error, m2 string, f2 func() error) error {
	switch q.r.Method {
	case m1:
		return f1()
	case m2:
		return f2()
	}
	return methodNotAllowed(q.w, q.r, m1, m2)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiError(http.StatusMethodNotAllowed, "method %s not allowed; use %s", r.Method, strings.Join(allowed, " or "))
}

// gatewayInfo tells the CLI where clients find the gateway, as far as the
// configuration says (without base_url the host is only known per
// request), and whether a client needs a registration to open an account.
type gatewayInfo struct {
	Name       string `json:"name"`
	PathPrefix string `json:"path_prefix"`
	// Registration is "open" or "preregistered".
	Registration string `json:"registration"`
	BaseURL      string `json:"base_url,omitempty"`
	Directory    string `json:"directory,omitempty"`
}

func (q *adminRequest) gatewayInfo() error {
	info := gatewayInfo{Name: q.h.Name, PathPrefix: q.h.PathPrefix, Registration: q.h.RegistrationMode, BaseURL: q.h.BaseURL}
	if q.h.BaseURL != "" {
		info.Directory = q.h.BaseURL + gateway.PathDirectory
	}
	return writeJSON(q.w, http.StatusOK, info)
}

// apiError is a client error with a message safe to show.
func apiError(status int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return caddy.APIError{HTTPStatus: status, Err: errors.New(msg), Message: msg}
}

// storeError maps a storage error: unknown records are 404, lost races
// 409, an unreachable backend 503, anything else 500.
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apiError(http.StatusNotFound, "%s not found", what)
	case errors.Is(err, storage.ErrConflict):
		return apiError(http.StatusConflict, "%s was changed concurrently; try again", what)
	case errors.Is(err, storage.ErrUnavailable):
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err, Message: "storage unavailable; try again later"}
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err, Message: "storage error"}
}

// retryConflict runs a read-modify-write once more when its
// compare-and-swap lost to a concurrent change.
func retryConflict(f func() error) error {
	err := f()
	if errors.Is(err, storage.ErrConflict) {
		err = f()
	}
	return err
}

// readJSON decodes a bounded body holding one JSON object into v and
// refuses fields v does not have, so that a typo is not silently ignored.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apiError(http.StatusUnsupportedMediaType, "content type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiError(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", maxAdminBody)
		}
		if errors.Is(err, io.EOF) {
			return apiError(http.StatusBadRequest, "request body is empty; send a JSON object")
		}
		return apiError(http.StatusBadRequest, "bad JSON body: %v", err)
	}
	if dec.More() {
		return apiError(http.StatusBadRequest, "bad JSON body: more than one value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // a creation answer holds a secret
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// page is a listing's ?cursor=&limit=.
type page struct {
	cursor string
	limit  int
}

// query checks a listing's query: only the filters it knows, plus paging.
func (q *adminRequest) query(filters ...string) (url.Values, page, error) {
	v := q.r.URL.Query()
	for k := range v {
		if k != "cursor" && k != "limit" && !slices.Contains(filters, k) {
			return nil, page{}, apiError(http.StatusBadRequest, "unknown query parameter %q; filters here are %s", k, strings.Join(filters, ", "))
		}
		if len(v[k]) > 1 {
			return nil, page{}, apiError(http.StatusBadRequest, "query parameter %q given more than once", k)
		}
	}
	p := page{cursor: v.Get("cursor"), limit: defaultPageLimit}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageLimit {
			return nil, page{}, apiError(http.StatusBadRequest, "limit must be a number from 1 to %d", maxPageLimit)
		}
		p.limit = n
	}
	return v, p, nil
}

// actor names who makes a change, for the audit trail.
func actor(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if s := certSubject(r.TLS.PeerCertificates[0]); s != "" {
			return s
		}
	}
	if s := cleanActor(r.Header.Get(officerHeader)); s != "" {
		return s
	}
	return "local:" + r.RemoteAddr
}

func certSubject(c *x509.Certificate) string {
	if s := cleanActor(c.Subject.CommonName); s != "" {
		return s
	}
	return cleanActor(c.Subject.String())
}

// cleanActor drops control characters and bounds the length, so that an
// audit entry cannot be made to look like several.
func cleanActor(s string) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
	if len(s) > maxActorLen {
		cut := maxActorLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// officer is the officer making this request.
func (q *adminRequest) officer() *officer { return &officer{h: q.h, actor: actor(q.r)} }

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)

func checkStatus(s string, allowed ...string) error {
	if s == "" {
		return nil
	}
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return apiError(http.StatusBadRequest, "status %q is none of %s", s, strings.Join(allowed, ", "))
}
