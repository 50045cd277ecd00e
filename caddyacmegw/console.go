package caddyacmegw

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Console{})
}

// Console serves the officers' console: web pages through which
// registration officers do what the admin API lets them do, for one
// gateway, through the same officer actions and into the same audit trail.
// Mount it on any site behind Caddy's own authentication (basic_auth,
// forward_auth, or TLS client certificates): the configuration does not
// load when nothing authenticates the console's requests, unless
// UnauthenticatedIsIntended says so.
type Console struct {
	// Gateway names the gateway the console acts on. Default: the only
	// gateway running; with several, one must be named.
	Gateway string `json:"gateway,omitempty"`

	// PathPrefix is the path under which the console's pages live; other
	// paths are passed on. Default: "/console".
	PathPrefix string `json:"path_prefix,omitempty"`

	// Identity is the placeholder naming the officer in the audit trail.
	// Default: "{http.auth.user.id}", which basic_auth sets; behind
	// forward_auth, name the header the SSO's answer copies in, such as
	// "{http.request.header.Remote-User}". Without a value, the subject
	// of a verified TLS client certificate names the officer; without
	// either, requests are refused.
	Identity string `json:"identity,omitempty"`

	// UnauthenticatedIsIntended lets the console start with nothing
	// authenticating in front of it, for a console reached only by those
	// who may act as officers (a loopback address, a private network).
	// Changes are then audited as "unauthenticated:" and the client's
	// address.
	UnauthenticatedIsIntended bool `json:"unauthenticated_is_intended,omitempty"`

	logger *zap.Logger
	// handler serves the paths under PathPrefix, with it stripped.
	handler http.Handler
	pages   consolePages
	// checked is set by the guard once it has found this console's
	// configuration authenticated; until then nothing is served. A
	// pointer, since the module's value is copied.
	checked *atomic.Bool
	// csrfSecret keys the officers' CSRF tokens; kept in Caddy's storage,
	// so that instances sharing it, and configurations reloaded, accept
	// each other's forms.
	csrfSecret []byte
	// once recognises a new-registration form sent again.
	once *onceForms
}

// CaddyModule returns the Caddy module information.
func (Console) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.acme_gateway_console",
		New: func() caddy.Module { return new(Console) },
	}
}

// Provision parses the templates and has the guard check what stands in
// front of the console once the whole configuration is provisioned.
func (c *Console) Provision(ctx caddy.Context) error {
	c.logger = ctx.Logger()
	c.checked = new(atomic.Bool)
	c.once = newOnceForms(time.Now)
	if c.PathPrefix == "" {
		c.PathPrefix = "/console"
	}
	c.PathPrefix = "/" + strings.Trim(c.PathPrefix, "/")
	if c.PathPrefix == "/" {
		return errors.New("acme_gateway_console: path_prefix must name a path below the site's root, such as /console")
	}
	if c.Identity == "" {
		c.Identity = "{http.auth.user.id}"
	}
	pages, err := parseConsolePages()
	if err != nil {
		return fmt.Errorf("console templates: %w", err)
	}
	c.pages = consolePages{base: c.PathPrefix, pages: pages}
	if c.csrfSecret, err = consoleSecret(ctx); err != nil {
		return fmt.Errorf("acme_gateway_console: the CSRF secret: %w", err)
	}
	c.handler = c.routes()
	guard, err := ctx.App("acme_gateway_console_guard")
	if err != nil {
		return err
	}
	guard.(*consoleGuard).watch(c)
	return nil
}

// ServeHTTP serves the console's pages under PathPrefix and passes other
// requests on. Until the guard has checked the configuration, it serves
// nothing: the http app may already be listening then, and an identity
// taken from a request header would be the client's own.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != c.PathPrefix && !strings.HasPrefix(r.URL.Path, c.PathPrefix+"/") {
		return next.ServeHTTP(w, r)
	}
	setSecurityHeaders(w.Header())
	if c.checked == nil || !c.checked.Load() {
		w.Header().Set("Retry-After", "1")
		c.pages.problem(w, http.StatusServiceUnavailable, errNotChecked.Error())
		return nil
	}
	who, authenticated, err := c.officerName(r)
	if err != nil {
		c.pages.problem(w, http.StatusForbidden, err.Error())
		return nil
	}
	h, err := c.gateway()
	if err != nil {
		c.pages.problem(w, http.StatusServiceUnavailable, err.Error())
		return nil
	}
	if r.URL.Path == c.PathPrefix {
		http.Redirect(w, r, c.PathPrefix+"/", http.StatusSeeOther)
		return nil
	}
	owner := who
	if !authenticated {
		owner = "" // named by an address whose port each connection changes
	}
	req := r.WithContext(withConsoleRequest(r.Context(), &consoleRequest{
		console: c, officer: &officer{h: h, actor: who}, base: c.PathPrefix, tokenOwner: owner,
	}))
	c.handler.ServeHTTP(w, req)
	return nil
}

// setSecurityHeaders keeps the console's pages to themselves: scripts and
// styles from the console only, never in a frame, no referrer leaving it,
// nothing cached (a creation page holds a secret).
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// errNotChecked is a request that comes before the guard has checked
// what stands in front of the console.
var errNotChecked = errors.New("this console's configuration is still being checked for the authentication in front of it; try again in a moment")

// errNoIdentity is a request that names no officer.
var errNoIdentity = errors.New("this console acts only for an authenticated officer, and this request names none: " +
	"the authentication in front of it set no identity and no verified client certificate came with it")

// officerName is who makes the request: the configured identity, else the
// subject of a verified client certificate, else, when that is intended,
// the client's address, unauthenticated.
func (c *Console) officerName(r *http.Request) (name string, authenticated bool, err error) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if s := cleanActor(repl.ReplaceAll(c.Identity, "")); s != "" {
			return s, true, nil
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if s := certSubject(r.TLS.VerifiedChains[0][0]); s != "" {
			return s, true, nil
		}
	}
	if c.UnauthenticatedIsIntended {
		return "unauthenticated:" + r.RemoteAddr, false, nil
	}
	return "", false, errNoIdentity
}

// consoleSecretKey is where Caddy's storage keeps the consoles' secret.
const consoleSecretKey = "acme_gateway/console_csrf_secret"

// consoleSecret is the consoles' secret from Caddy's storage, made on
// first use under the storage's lock, so that two instances starting
// together keep one.
func consoleSecret(ctx caddy.Context) ([]byte, error) {
	st := ctx.Storage()
	if b, err := st.Load(ctx, consoleSecretKey); err == nil && len(b) == 32 {
		return b, nil
	}
	if err := st.Lock(ctx, consoleSecretKey); err != nil {
		return nil, err
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), consoleSecretKey) }()
	b, err := st.Load(ctx, consoleSecretKey)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := st.Store(ctx, consoleSecretKey, b); err != nil {
		return nil, err
	}
	return b, nil
}

// gateway is the gateway the console acts on, as running now.
func (c *Console) gateway() (*Handler, error) {
	if c.Gateway != "" {
		if h := gateways.get(c.Gateway); h != nil {
			return h, nil
		}
		return nil, fmt.Errorf("no ACME gateway named %q is running", c.Gateway)
	}
	h, n := gateways.only()
	switch {
	case n == 0:
		return nil, errors.New("no ACME gateway is running")
	case n > 1:
		return nil, errors.New("several ACME gateways are running; name one with the console's gateway option")
	}
	return h, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Console)(nil)
	_ caddyhttp.MiddlewareHandler = (*Console)(nil)
)
