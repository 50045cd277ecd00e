package caddyacmegw

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func TestCaddyfile_AdaptLimits(t *testing.T) {
	out, err := adaptCaddyfile(t, `
acme.example.com {
	acme_gateway {
		storage memory
		limits {
			orders_per_account                 50 1h
			pending_authorizations_per_account 200
			failed_validations_per_name        3 30m
			accounts_per_ip                    off
			certificates_per_registration      100 24h
		}
	}
}
`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	jsonEqual(t, oneGatewayHandler(t, out), `{
		"handler": "acme_gateway",
		"storage": {"module": "memory"},
		"limits": {
			"orders_per_account": {"count": 50, "window": 3600000000000},
			"pending_authorizations_per_account": {"count": 200},
			"failed_validations_per_name": {"count": 3, "window": 1800000000000},
			"accounts_per_ip": {"off": true},
			"certificates_per_registration": {"count": 100, "window": 86400000000000}
		}
	}`)
}

func TestCaddyfile_LimitsRefusesBadLines(t *testing.T) {
	for _, tt := range []struct{ block, want string }{
		{"orders 5", "unrecognized limit"},
		{"orders_per_account", "wrong argument count"},
		{"orders_per_account 0", "not a positive number"},
		{"orders_per_account 5 soon", "not a positive duration"},
		{"orders_per_account off 1h", "wrong argument count"},
		{"orders_per_account 5 1h 2", "wrong argument count"},
	} {
		t.Run(tt.block, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("acme_gateway {\n limits {\n" + tt.block + "\n}\n}"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestLimits_GatewayLimits(t *testing.T) {
	l := &Limits{
		OrdersPerAccount: &RateLimit{Count: 7, Window: caddy.Duration(2 * time.Hour)},
		AccountsPerIP:    &RateLimit{Off: true},
	}
	got := l.gatewayLimits()
	want := gateway.Limits{
		OrdersPerAccount: gateway.Limit{Count: 7, Window: 2 * time.Hour},
		AccountsPerIP:    gateway.Limit{Count: -1},
	}
	if got != want {
		t.Fatalf("gatewayLimits = %+v, want %+v", got, want)
	}
	if (*Limits)(nil).gatewayLimits() != (gateway.Limits{}) {
		t.Fatal("no limits block is not all defaults")
	}
	bad := &Limits{CertificatesPerRegistration: &RateLimit{Count: -2}}
	if err := bad.check(); err == nil || !strings.Contains(err.Error(), "certificates_per_registration") {
		t.Fatalf("check = %v, want a refusal naming the limit", err)
	}
}

// A reload keeps a gateway's counts: the new handler takes the old one's
// counter before the old one lets go; another gateway counts apart.
func TestSharedCounter_KeptAcrossReload(t *testing.T) {
	name := "test/" + t.Name()
	c1, release1, err := sharedCounter(name, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	c2, release2, err := sharedCounter(name, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	other, releaseOther, err := sharedCounter(name+"/other", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseOther()
	if err := release1(); err != nil {
		t.Fatal(err)
	}
	if c1 != c2 || c1 == other {
		t.Fatal("a reload replaced the counter, or two gateways share one")
	}
}

// The client IP of a request is Caddy's client_ip (which honours
// trusted_proxies) when Caddy set it, the connection's address otherwise.
func TestClientIP_TakesCaddysClientIP(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/acme/new-account", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	if got := clientIP(r); got != "10.0.0.1" {
		t.Fatalf("without client_ip: %q, want the connection's 10.0.0.1", got)
	}
	vars := map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.7"}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	if got := clientIP(r); got != "203.0.113.7" {
		t.Fatalf("with client_ip: %q, want 203.0.113.7", got)
	}
}
