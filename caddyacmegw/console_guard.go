package caddyacmegw

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(consoleGuard{})
}

// consoleGuard is a Caddy app that refuses a configuration in which an
// officers' console has no authentication in front of it. A handler sees
// neither its siblings nor the server it is in when it is provisioned; an
// app sees all of them once every app is provisioned. Each console
// therefore loads this app with ctx.App at its Provision, which puts it
// among the configuration's apps (caddy.Context.LoadModuleByID keeps every
// App it loads in the config's apps), and Caddy calls Start on all of
// them once all are provisioned, before the configuration counts as
// loaded: an error from Start fails the load, stops the apps already
// started and keeps the previous configuration running. By then the http
// app's routes hold their provisioned handlers (Route.Handlers), which is
// what Start walks. Start does not depend on the http app having started:
// it reads only its provisioned configuration. Apps start in no fixed
// order, so the http app may be listening before the guard has checked,
// and a refused configuration may serve for the moment before Caddy stops
// it. A request then could name its own officer (an identity read from a
// request header, as behind forward_auth, is the client's own header when
// nothing in front sets it), so each console serves nothing but a 503
// until a successful Start of its configuration's guard marks it checked.
type consoleGuard struct {
	ctx caddy.Context
	// consoles are added during provisioning and read at Start, which
	// Caddy runs one after the other in one goroutine.
	consoles []*Console
}

// CaddyModule returns the Caddy module information.
func (consoleGuard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway_console_guard",
		New: func() caddy.Module { return new(consoleGuard) },
	}
}

// Provision keeps the context, through which Start finds the http app.
func (g *consoleGuard) Provision(ctx caddy.Context) error {
	g.ctx = ctx
	return nil
}

// watch has Start check c.
func (g *consoleGuard) watch(c *Console) {
	g.consoles = append(g.consoles, c)
}

// Start fails when a console that is not marked unauthenticated_is_intended
// is reached without authentication, and otherwise lets the consoles
// serve.
func (g *consoleGuard) Start() error {
	if len(g.consoles) == 0 {
		return nil
	}
	appAny, err := g.ctx.App("http")
	if err != nil {
		return fmt.Errorf("acme_gateway_console: finding the http app: %w", err)
	}
	app, ok := appAny.(*caddyhttp.App)
	if !ok {
		return errors.New("acme_gateway_console: the http app is not caddyhttp's")
	}
	return g.start(app)
}

// start checks the consoles in app's routes and, when all pass, marks
// every console of this configuration checked.
func (g *consoleGuard) start(app *caddyhttp.App) error {
	if err := g.check(app); err != nil {
		return err
	}
	for _, c := range g.consoles {
		c.checked.Store(true)
	}
	return nil
}

// check fails when a console of this configuration is reached without
// authentication.
func (g *consoleGuard) check(app *caddyhttp.App) error {
	found := map[*Console]bool{}
	var problems []string
	for name, srv := range app.Servers {
		walkConsoles(srv.Routes, nil, false, func(c *Console, hosts []string, authenticated bool) {
			found[c] = true
			if !authenticated && !c.UnauthenticatedIsIntended && !requiresClientCertificates(srv, hosts) {
				problems = append(problems, fmt.Sprintf("the console at %s on server %s", c.PathPrefix, name))
			}
		})
	}
	for _, c := range g.consoles {
		if !found[c] && !c.UnauthenticatedIsIntended {
			problems = append(problems, fmt.Sprintf("the console at %s, inside a handler whose routes cannot be followed", c.PathPrefix))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("acme_gateway_console refuses to start without authentication in front of it: %s; "+
			"put basic_auth or forward_auth (without a matcher of its own; a reverse_proxy counts only in the shape forward_auth gives it) before it in the same route, "+
			"or serve it on a server whose TLS connection policies require and verify client certificates "+
			"(client_auth mode require_and_verify); if anyone who reaches it may act as an officer, say so with unauthenticated_is_intended",
			strings.Join(problems, "; "))
	}
	return nil
}

// Stop does nothing: the guard holds nothing.
func (g *consoleGuard) Stop() error { return nil }

// walkConsoles calls found for every console in routes, in the order a
// request meets them, with the hosts its route allows (nil: any) and
// whether an authentication comes before it on the way there. Only an
// authentication in a route without matchers counts, since a matcher could
// leave the console's requests out of it; one in the console's own route
// counts whatever its matchers.
func walkConsoles(routes caddyhttp.RouteList, hosts []string, authenticated bool, found func(*Console, []string, bool)) {
	for _, route := range routes {
		routeAuth := authenticated
		routeHosts := hosts
		if h := routeHostNames(route.MatcherSets); h != nil {
			// Narrower than, or as wide as, what the enclosing routes
			// allow: checking all of them errs on the safe side.
			routeHosts = h
		}
		for _, h := range route.Handlers {
			switch h := h.(type) {
			case *Console:
				found(h, routeHosts, routeAuth)
			case *caddyhttp.Subroute:
				walkConsoles(h.Routes, routeHosts, routeAuth, found)
			default:
				if authenticates(h) {
					routeAuth = true
				}
			}
		}
		if routeAuth && len(route.MatcherSets) == 0 {
			authenticated = true
		}
	}
}

// routeHostNames are the hosts a route's matchers let through, or nil
// when some matcher set does not limit the host.
func routeHostNames(sets caddyhttp.MatcherSets) []string {
	if len(sets) == 0 {
		return nil
	}
	var hosts []string
	for _, set := range sets {
		limited := false
		for _, m := range set {
			switch mh := m.(type) {
			case caddyhttp.MatchHost:
				hosts, limited = append(hosts, mh...), true
			case *caddyhttp.MatchHost: // as provisioned
				hosts, limited = append(hosts, *mh...), true
			}
		}
		if !limited {
			return nil
		}
	}
	return hosts
}

// authenticates tells Caddy's own means of authentication: the
// authentication handler (basic_auth and its kin) and forward_auth.
func authenticates(h caddyhttp.MiddlewareHandler) bool {
	switch h := h.(type) {
	case *caddyauth.Authentication:
		return true
	case *reverseproxy.Handler:
		return forwardsAuth(h)
	}
	return false
}

// forwardsAuth recognises forward_auth in the reverse proxy that Caddy's
// forward_auth directive builds: the request rewritten to a GET of the
// auth server's uri, and a handle_response for its 2xx answers whose
// routes set vars and copy the answer's headers into the request, and so
// pass it on; any other answer is sent back to the client. Other
// handle_response blocks may answer other statuses, each ending the
// request there (replace_status, respond, redir, error). An ordinary
// reverse proxy with handle_response is none of this.
func forwardsAuth(h *reverseproxy.Handler) bool {
	if h.Rewrite == nil || h.Rewrite.Method != http.MethodGet || h.Rewrite.URI == "" {
		return false
	}
	passes := false
	for _, rh := range h.HandleResponse {
		switch {
		case rh.StatusCode == "" && onlySuccess(rh.Match) && copiesHeaders(rh.Routes):
			passes = true
		case !endsRequest(rh):
			return false
		}
	}
	return passes
}

// onlySuccess reports whether m matches 2xx statuses only.
func onlySuccess(m *caddyhttp.ResponseMatcher) bool {
	return m != nil && len(m.StatusCode) > 0 && !slices.ContainsFunc(m.StatusCode, func(c int) bool {
		return c != 2 && (c < 200 || c > 299)
	})
}

// copiesHeaders reports whether routes are forward_auth's for a 2xx
// answer: a vars handler, then headers handlers.
func copiesHeaders(routes caddyhttp.RouteList) bool {
	if len(routes) == 0 || len(routes[0].Handlers) != 1 {
		return false
	}
	if _, ok := routes[0].Handlers[0].(*caddyhttp.VarsMiddleware); !ok {
		return false
	}
	for _, r := range routes[1:] {
		for _, h := range r.Handlers {
			if _, ok := h.(*headers.Handler); !ok {
				return false
			}
		}
	}
	return true
}

// endsRequest reports whether a handle_response answers the client
// itself rather than passing the request on: it replaces the status (and
// the auth server's answer is sent), or a route of it without matchers
// responds, redirects or fails.
func endsRequest(rh caddyhttp.ResponseHandler) bool {
	if rh.StatusCode != "" {
		return true
	}
	for _, r := range rh.Routes {
		if len(r.MatcherSets) > 0 {
			continue
		}
		for _, h := range r.Handlers {
			switch h.(type) {
			case *caddyhttp.StaticResponse, *caddyhttp.StaticError:
				return true
			}
		}
	}
	return false
}

// requiresClientCertificates reports whether every TLS connection that
// can carry a request for one of hosts (nil: any host) to srv must present
// a client certificate that verifies.
//
// With hosts named and Caddy's strict SNI-Host check on (Caddy turns it on
// when a connection policy authenticates clients), a request for a host
// arrives only on a connection whose SNI is that host, so the policy that
// the handshake picks for that SNI decides; the Caddyfile adds a catch-all
// policy for other names, which then does not matter. The policies pick
// by SNI here, as the Caddyfile writes them; a policy choosing by the
// client's address would not be seen through. Otherwise every policy must
// require and verify client certificates.
func requiresClientCertificates(srv *caddyhttp.Server, hosts []string) bool {
	if len(srv.TLSConnPolicies) == 0 {
		return false
	}
	strict := srv.StrictSNIHost != nil && *srv.StrictSNIHost
	if hosts == nil || !strict || slices.ContainsFunc(hosts, func(h string) bool { return strings.ContainsAny(h, "*{") }) {
		return !slices.ContainsFunc(srv.TLSConnPolicies, func(p *caddytls.ConnectionPolicy) bool { return !verifiesClients(p) })
	}
	// A context without a configuration: building the selection then
	// leaves the tls app (its ECH names) alone.
	pick := srv.TLSConnPolicies.TLSConfig(caddy.Context{}).GetConfigForClient
	for _, h := range hosts {
		cfg, err := pickPolicy(pick, h)
		if err != nil || cfg == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
			return false
		}
	}
	return true
}

// pickPolicy is the TLS configuration a handshake for serverName gets.
func pickPolicy(pick func(*tls.ClientHelloInfo) (*tls.Config, error), serverName string) (cfg *tls.Config, err error) {
	defer func() {
		if recover() != nil {
			cfg, err = nil, errors.New("a connection policy needs more of the handshake than its server name")
		}
	}()
	return pick(&tls.ClientHelloInfo{ServerName: serverName, Conn: loopbackConn{}})
}

// loopbackConn is the connection of a handshake tried out, for policies
// that look at addresses.
type loopbackConn struct{ net.Conn }

func (loopbackConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv6loopback, Port: 443} }
func (loopbackConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback, Port: 50000} }

// verifiesClients reports whether policy p, as provisioned, requires and
// verifies a client certificate.
func verifiesClients(p *caddytls.ConnectionPolicy) bool {
	return p.TLSConfig != nil && p.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert
}

// Interface guards
var (
	_ caddy.App         = (*consoleGuard)(nil)
	_ caddy.Provisioner = (*consoleGuard)(nil)
)
