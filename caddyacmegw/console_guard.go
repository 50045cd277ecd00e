package caddyacmegw

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
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
// order, so the http app may be listening for the moment before the guard
// refuses; a request then finds no officer identity and is refused too.
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
// is reached without authentication.
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
	found := map[*Console]bool{}
	var problems []string
	for name, srv := range app.Servers {
		clientCerts := requiresClientCertificates(srv)
		walkConsoles(srv.Routes, clientCerts, func(c *Console, authenticated bool) {
			found[c] = true
			if !authenticated && !c.UnauthenticatedIsIntended {
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
			"put basic_auth or forward_auth (without a matcher of its own) before it in the same route, "+
			"or serve it on a server whose TLS connection policies require and verify client certificates "+
			"(client_auth mode require_and_verify); if anyone who reaches it may act as an officer, say so with unauthenticated_is_intended",
			strings.Join(problems, "; "))
	}
	return nil
}

// Stop does nothing: the guard holds nothing.
func (g *consoleGuard) Stop() error { return nil }

// walkConsoles calls found for every console in routes, in the order a
// request meets them, with whether an authentication comes before it on
// the way there. Only an authentication in a route without matchers
// counts, since a matcher could leave the console's requests out of it;
// one in the console's own route counts whatever its matchers.
func walkConsoles(routes caddyhttp.RouteList, authenticated bool, found func(*Console, bool)) {
	for _, route := range routes {
		routeAuth := authenticated
		for _, h := range route.Handlers {
			switch h := h.(type) {
			case *Console:
				found(h, routeAuth)
			case *caddyhttp.Subroute:
				walkConsoles(h.Routes, routeAuth, found)
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

// authenticates tells Caddy's own means of authentication: the
// authentication handler (basic_auth and its kin) and forward_auth, a
// reverse proxy that answers on the auth server's response.
func authenticates(h caddyhttp.MiddlewareHandler) bool {
	switch h := h.(type) {
	case *caddyauth.Authentication:
		return true
	case *reverseproxy.Handler:
		return len(h.HandleResponse) > 0
	}
	return false
}

// requiresClientCertificates reports whether every TLS connection to srv
// must present a client certificate that verifies.
func requiresClientCertificates(srv *caddyhttp.Server) bool {
	if len(srv.TLSConnPolicies) == 0 {
		return false
	}
	for _, p := range srv.TLSConnPolicies {
		ca := p.ClientAuthentication
		if ca == nil {
			return false
		}
		trusts := len(ca.TrustedCACerts)+len(ca.TrustedCACertPEMFiles)+len(ca.TrustedLeafCerts) > 0 || ca.CARaw != nil
		if ca.Mode != "require_and_verify" && (ca.Mode != "" || !trusts) {
			return false
		}
	}
	return true
}

// Interface guards
var (
	_ caddy.App         = (*consoleGuard)(nil)
	_ caddy.Provisioner = (*consoleGuard)(nil)
)
