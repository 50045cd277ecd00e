package caddyacmegw

import (
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func TestWalkConsoles_FindsWhatAuthenticatesFirst(t *testing.T) {
	auth := &caddyauth.Authentication{}
	forward := &reverseproxy.Handler{HandleResponse: []caddyhttp.ResponseHandler{{}}}
	proxy := &reverseproxy.Handler{}
	matcher := caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/other/*"}}}
	route := func(m caddyhttp.MatcherSets, hs ...caddyhttp.MiddlewareHandler) caddyhttp.Route {
		return caddyhttp.Route{MatcherSets: m, Handlers: hs}
	}
	sub := func(routes ...caddyhttp.Route) *caddyhttp.Subroute { return &caddyhttp.Subroute{Routes: routes} }
	tests := []struct {
		name   string
		routes func(c *Console) caddyhttp.RouteList
		want   bool
	}{
		{"alone", func(c *Console) caddyhttp.RouteList { return caddyhttp.RouteList{route(nil, c)} }, false},
		{"after basic_auth", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(nil, auth), route(nil, c)}
		}, true},
		{"after forward_auth, in a site's subroute", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(matcher, sub(route(nil, forward), route(nil, c)))}
		}, true},
		{"after a reverse proxy that does not answer for an auth server", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(nil, proxy), route(nil, c)}
		}, false},
		{"after basic_auth on other paths", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(matcher, auth), route(nil, c)}
		}, false},
		{"in the same route as a matched basic_auth", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(matcher, auth, c)}
		}, true},
		{"before basic_auth", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(nil, c), route(nil, auth)}
		}, false},
		{"a subroute's authentication does not cover what follows it", func(c *Console) caddyhttp.RouteList {
			return caddyhttp.RouteList{route(matcher, sub(route(nil, auth))), route(nil, c)}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Console{}
			found := 0
			walkConsoles(tt.routes(c), false, func(got *Console, authenticated bool) {
				found++
				if got != c || authenticated != tt.want {
					t.Fatalf("console found authenticated=%v, want %v", authenticated, tt.want)
				}
			})
			if found != 1 {
				t.Fatalf("console found %d times", found)
			}
		})
	}
}

func TestRequiresClientCertificates(t *testing.T) {
	policy := func(ca *caddytls.ClientAuthentication) *caddytls.ConnectionPolicy {
		return &caddytls.ConnectionPolicy{ClientAuthentication: ca}
	}
	tests := []struct {
		name     string
		policies caddytls.ConnectionPolicies
		want     bool
	}{
		{"no TLS", nil, false},
		{"no client authentication", caddytls.ConnectionPolicies{policy(nil)}, false},
		{"require_and_verify", caddytls.ConnectionPolicies{policy(&caddytls.ClientAuthentication{Mode: "require_and_verify"})}, true},
		{"trusted CAs, default mode", caddytls.ConnectionPolicies{policy(&caddytls.ClientAuthentication{TrustedCACerts: []string{"x"}})}, true},
		{"require without verifying", caddytls.ConnectionPolicies{policy(&caddytls.ClientAuthentication{Mode: "require"})}, false},
		{"verify_if_given", caddytls.ConnectionPolicies{policy(&caddytls.ClientAuthentication{Mode: "verify_if_given", TrustedCACerts: []string{"x"}})}, false},
		{"one policy of two lets clients in without", caddytls.ConnectionPolicies{
			policy(&caddytls.ClientAuthentication{Mode: "require_and_verify"}), policy(nil)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requiresClientCertificates(&caddyhttp.Server{TLSConnPolicies: tt.policies}); got != tt.want {
				t.Fatalf("requiresClientCertificates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConsole_UnmarshalCaddyfile(t *testing.T) {
	testUnmarshal(t, []unmarshalCase[Console]{
		{name: "defaults", input: "acme_gateway_console", want: Console{}},
		{name: "every option", input: `acme_gateway_console {
			gateway     officers
			path_prefix /officers
			identity    {http.request.header.Remote-User}
			unauthenticated_is_intended
		}`, want: Console{Gateway: "officers", PathPrefix: "/officers", Identity: "{http.request.header.Remote-User}", UnauthenticatedIsIntended: true}},
		{name: "an argument", input: "acme_gateway_console officers", wantErr: true},
		{name: "unknown option", input: "acme_gateway_console {\n\tofficer carol\n}", wantErr: true},
		{name: "gateway without a name", input: "acme_gateway_console {\n\tgateway\n}", wantErr: true},
		{name: "intended with a value", input: "acme_gateway_console {\n\tunauthenticated_is_intended yes\n}", wantErr: true},
	})
}
