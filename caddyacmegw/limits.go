package caddyacmegw

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres"
)

// Limits are the gateway's rate limits. A limit left out takes its
// default; those lie well above what an honest client does. An exceeded
// limit answers rateLimited (429) with Retry-After, the time until its
// window ends. Counts are kept in fixed windows: in memory (kept across
// config reloads) for every storage but postgres, where the instances of
// a gateway share them in the database.
type Limits struct {
	// OrdersPerAccount caps the new orders of an account. Default: 300
	// per 3h.
	OrdersPerAccount *RateLimit `json:"orders_per_account,omitempty"`
	// PendingAuthorizationsPerAccount caps the pending authorizations of
	// an account: those it made in the window that are still pending (a
	// validated, failed or deactivated one no longer counts). Default:
	// 1000 per authz_lifetime.
	PendingAuthorizationsPerAccount *RateLimit `json:"pending_authorizations_per_account,omitempty"`
	// FailedValidationsPerName caps the failed validations of one account
	// for one name; over it, the account's new orders for that name are
	// refused until the window ends. Default: 5 per 1h.
	FailedValidationsPerName *RateLimit `json:"failed_validations_per_name,omitempty"`
	// AccountsPerIP caps the accounts created from one client IP address
	// (Caddy's client_ip, which honours trusted_proxies) in open
	// registration without an external account binding. Default: 10 per
	// 3h.
	AccountsPerIP *RateLimit `json:"accounts_per_ip,omitempty"`
	// CertificatesPerRegistration caps the certificates issued to the
	// accounts of one registration (external account binding), or to one
	// account without one. Default: 1000 per 24h.
	CertificatesPerRegistration *RateLimit `json:"certificates_per_registration,omitempty"`
}

// RateLimit is one limit: at most Count events per Window.
type RateLimit struct {
	// Count is how many events one window allows. Default: the limit's.
	Count int `json:"count,omitempty"`
	// Window is the length of a window. Default: the limit's.
	Window caddy.Duration `json:"window,omitempty"`
	// Off turns the limit off.
	Off bool `json:"off,omitempty"`
}

// limitField is a limit by its configuration name, with where it goes in
// gateway.Limits.
type limitField struct {
	name string
	v    **RateLimit
	to   func(*gateway.Limits) *gateway.Limit
}

// limitFields are the limits by their configuration names.
func (l *Limits) limitFields() []limitField {
	return []limitField{
		{"orders_per_account", &l.OrdersPerAccount, func(g *gateway.Limits) *gateway.Limit { return &g.OrdersPerAccount }},
		{"pending_authorizations_per_account", &l.PendingAuthorizationsPerAccount, func(g *gateway.Limits) *gateway.Limit { return &g.PendingAuthzPerAccount }},
		{"failed_validations_per_name", &l.FailedValidationsPerName, func(g *gateway.Limits) *gateway.Limit { return &g.FailedValidationsPerName }},
		{"accounts_per_ip", &l.AccountsPerIP, func(g *gateway.Limits) *gateway.Limit { return &g.AccountsPerIP }},
		{"certificates_per_registration", &l.CertificatesPerRegistration, func(g *gateway.Limits) *gateway.Limit { return &g.CertificatesPerRegistration }},
	}
}

// check refuses negative counts and windows.
func (l *Limits) check() error {
	if l == nil {
		return nil
	}
	for _, f := range l.limitFields() {
		if r := *f.v; r != nil && (r.Count < 0 || r.Window < 0) {
			return fmt.Errorf("limits: %s: count and window must be positive", f.name)
		}
	}
	return nil
}

// gatewayLimits is l for gateway.Config: zero takes the default, a
// negative count is off.
func (l *Limits) gatewayLimits() gateway.Limits {
	var g gateway.Limits
	if l == nil {
		return g
	}
	for _, f := range l.limitFields() {
		from, to := *f.v, f.to(&g)
		switch {
		case from == nil:
		case from.Off:
			to.Count = -1
		default:
			*to = gateway.Limit{Count: from.Count, Window: time.Duration(from.Window)}
		}
	}
	return g
}

// unmarshalCaddyfile reads a limits block:
//
//	limits {
//		<limit> <count> [<window>]
//		<limit> off
//	}
func (l *Limits) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var dst **RateLimit
		for _, f := range l.limitFields() {
			if f.name == name {
				dst = f.v
			}
		}
		if dst == nil {
			return d.Errf("unrecognized limit %q", name)
		}
		args := d.RemainingArgs()
		if len(args) == 0 || len(args) > 2 || args[0] == "off" && len(args) > 1 {
			return d.ArgErr()
		}
		r := &RateLimit{Off: args[0] == "off"}
		if !r.Off {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("%s: count %q is not a positive number", name, args[0])
			}
			r.Count = n
		}
		if len(args) == 2 {
			w, err := caddy.ParseDuration(args[1])
			if err != nil || w <= 0 {
				return d.Errf("%s: window %q is not a positive duration", name, args[1])
			}
			r.Window = caddy.Duration(w)
		}
		*dst = r
	}
	return nil
}

// clientIP is the client's address as Caddy determined it, honouring the
// server's trusted proxies, or the connection's without it.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return gateway.RemoteIP(r)
}

// Interface guards
var _ gateway.Counter = (*postgres.Store)(nil)
