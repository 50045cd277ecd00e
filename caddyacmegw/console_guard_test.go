package caddyacmegw

import (
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func TestWalkConsoles_FindsWhatAuthenticatesFirst(t *testing.T) {
	auth := &caddyauth.Authentication{}
	forward := forwardAuthProxy()
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
			walkConsoles(tt.routes(c), nil, false, func(got *Console, _ []string, authenticated bool) {
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

// forwardAuthProxy is the reverse proxy Caddy's forward_auth directive
// builds, as provisioned: "forward_auth auth:9091 { uri /verify;
// copy_headers Remote-User }".
func forwardAuthProxy() *reverseproxy.Handler {
	return &reverseproxy.Handler{
		Rewrite: &rewrite.Rewrite{Method: "GET", URI: "/verify"},
		HandleResponse: []caddyhttp.ResponseHandler{{
			Match: &caddyhttp.ResponseMatcher{StatusCode: []int{2}},
			Routes: caddyhttp.RouteList{
				{Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.VarsMiddleware{}}},
				{Handlers: []caddyhttp.MiddlewareHandler{&headers.Handler{Request: &headers.HeaderOps{Delete: []string{"Remote-User"}}}}},
				{Handlers: []caddyhttp.MiddlewareHandler{&headers.Handler{Request: &headers.HeaderOps{
					Set: http.Header{"Remote-User": {"{http.reverse_proxy.header.Remote-User}"}}}}}},
			},
		}},
	}
}

func TestForwardsAuth(t *testing.T) {
	withResponse := func(p *reverseproxy.Handler, rh ...caddyhttp.ResponseHandler) *reverseproxy.Handler {
		p.HandleResponse = append(p.HandleResponse, rh...)
		return p
	}
	status := func(codes ...int) *caddyhttp.ResponseMatcher { return &caddyhttp.ResponseMatcher{StatusCode: codes} }
	routes := func(hs ...caddyhttp.MiddlewareHandler) caddyhttp.RouteList {
		return caddyhttp.RouteList{{Handlers: hs}}
	}
	setHeader := &headers.Handler{Response: &headers.RespHeaderOps{HeaderOps: &headers.HeaderOps{Set: http.Header{"X-Seen": {"1"}}}}}
	tests := []struct {
		name  string
		proxy *reverseproxy.Handler
		want  bool
	}{
		{"forward_auth", forwardAuthProxy(), true},
		{"forward_auth that redirects a 401 to a login page", withResponse(forwardAuthProxy(),
			caddyhttp.ResponseHandler{Match: status(401), Routes: routes(&caddyhttp.StaticResponse{StatusCode: "302"})}), true},
		{"forward_auth that replaces a 401's status", withResponse(forwardAuthProxy(),
			caddyhttp.ResponseHandler{Match: status(401), StatusCode: "403"}), true},
		{"forward_auth that lets a 401 through", withResponse(forwardAuthProxy(),
			caddyhttp.ResponseHandler{Match: status(401), Routes: routes(setHeader)}), false},
		{"a reverse proxy with handle_response", &reverseproxy.Handler{HandleResponse: []caddyhttp.ResponseHandler{
			{Match: status(2), Routes: routes(setHeader)}}}, false},
		{"a reverse proxy with handle_response for every status", &reverseproxy.Handler{HandleResponse: []caddyhttp.ResponseHandler{{}}}, false},
		{"without the rewrite to GET", func() *reverseproxy.Handler {
			p := forwardAuthProxy()
			p.Rewrite = nil
			return p
		}(), false},
		{"passing on more than 2xx", func() *reverseproxy.Handler {
			p := forwardAuthProxy()
			p.HandleResponse[0].Match = status(2, 401)
			return p
		}(), false},
		{"passing on every status", func() *reverseproxy.Handler {
			p := forwardAuthProxy()
			p.HandleResponse[0].Match = nil
			return p
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authenticates(tt.proxy); got != tt.want {
				t.Fatalf("authenticates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequiresClientCertificates(t *testing.T) {
	policy := func(mode tls.ClientAuthType) *caddytls.ConnectionPolicy {
		return &caddytls.ConnectionPolicy{TLSConfig: &tls.Config{ClientAuth: mode}}
	}
	strict := true
	tests := []struct {
		name     string
		policies caddytls.ConnectionPolicies
		strict   *bool
		hosts    []string
		want     bool
	}{
		{"no TLS", nil, nil, nil, false},
		{"no client authentication", caddytls.ConnectionPolicies{policy(tls.NoClientCert)}, nil, nil, false},
		{"require and verify", caddytls.ConnectionPolicies{policy(tls.RequireAndVerifyClientCert)}, nil, nil, true},
		{"require without verifying", caddytls.ConnectionPolicies{policy(tls.RequireAnyClientCert)}, nil, nil, false},
		{"verify if given", caddytls.ConnectionPolicies{policy(tls.VerifyClientCertIfGiven)}, nil, nil, false},
		{"a catch-all policy lets other names in", caddytls.ConnectionPolicies{
			policy(tls.RequireAndVerifyClientCert), policy(tls.NoClientCert)}, &strict, nil, false},
		{"a wildcard host cannot be tried out", caddytls.ConnectionPolicies{
			policy(tls.RequireAndVerifyClientCert), policy(tls.NoClientCert)}, &strict, []string{"*.example.com"}, false},
		{"hosts without the strict SNI-Host check", caddytls.ConnectionPolicies{
			policy(tls.RequireAndVerifyClientCert), policy(tls.NoClientCert)}, nil, []string{"officers.example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &caddyhttp.Server{TLSConnPolicies: tt.policies, StrictSNIHost: tt.strict}
			if got := requiresClientCertificates(srv, tt.hosts); got != tt.want {
				t.Fatalf("requiresClientCertificates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRouteHostNames(t *testing.T) {
	host := func(h ...string) caddyhttp.RequestMatcherWithError { m := caddyhttp.MatchHost(h); return &m }
	path := caddyhttp.MatchPath{"/console*"}
	tests := []struct {
		name string
		sets caddyhttp.MatcherSets
		want []string
	}{
		{"no matchers", nil, nil},
		{"a host", caddyhttp.MatcherSets{{host("a.example")}}, []string{"a.example"}},
		{"a host and a path", caddyhttp.MatcherSets{{host("a.example"), path}}, []string{"a.example"}},
		{"hosts in each set", caddyhttp.MatcherSets{{host("a.example")}, {host("b.example")}}, []string{"a.example", "b.example"}},
		{"one set without a host", caddyhttp.MatcherSets{{host("a.example")}, {path}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := routeHostNames(tt.sets); !slices.Equal(got, tt.want) {
				t.Fatalf("routeHostNames = %v, want %v", got, tt.want)
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

// TestConsole_ServesNothingUntilTheGuardStarted sends a request naming its
// own officer in a header, as a client can when the forward_auth that
// would set it is not yet known to stand in front: until the guard's
// Start has passed the configuration, the console answers 503.
func TestConsole_ServesNothingUntilTheGuardStarted(t *testing.T) {
	e := newConsoleEnv(t, "")
	c := e.console
	c.Identity = "{http.request.header.Remote-User}"
	c.checked.Store(false)
	get := func() (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
		req.Header.Set("Remote-User", "mallory")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	if status, body, h := get(); status != http.StatusServiceUnavailable || !strings.Contains(body, "still being checked") ||
		h.Get("Content-Security-Policy") == "" || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("before the guard started: %d %v\n%s", status, h, body)
	}

	g := &consoleGuard{}
	g.watch(c)
	unguarded := &caddyhttp.App{Servers: map[string]*caddyhttp.Server{"srv": {
		Routes: caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{c}}}}}}
	if err := g.start(unguarded); err == nil {
		t.Fatal("the guard passed a console with nothing in front of it")
	}
	if status, _, _ := get(); status != http.StatusServiceUnavailable {
		t.Fatalf("after the guard refused the configuration: %d, want 503", status)
	}

	guarded := &caddyhttp.App{Servers: map[string]*caddyhttp.Server{"srv": {
		Routes: caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{&caddyauth.Authentication{}, c}}}}}}
	if err := g.start(guarded); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := get(); status != http.StatusOK || !strings.Contains(body, "mallory") {
		t.Fatalf("after the guard started: %d\n%s", status, body)
	}
}
