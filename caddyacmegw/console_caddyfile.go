package caddyacmegw

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("acme_gateway_console", parseConsoleCaddyfile)
	// After forward_auth, which itself comes after basic_auth, so that
	// either authenticates a request before the console sees it.
	httpcaddyfile.RegisterDirectiveOrder("acme_gateway_console", httpcaddyfile.After, "forward_auth")
}

func parseConsoleCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var c Console
	err := c.UnmarshalCaddyfile(h.Dispenser)
	return &c, err
}

// UnmarshalCaddyfile sets up the console from Caddyfile tokens:
//
//	acme_gateway_console [<matcher>] {
//		gateway     <name>
//		path_prefix <path>
//		identity    <placeholder>
//		unauthenticated_is_intended
//	}
func (c *Console) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "gateway", "path_prefix", "identity":
			key := d.Val()
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			switch key {
			case "gateway":
				c.Gateway = v
			case "path_prefix":
				c.PathPrefix = v
			case "identity":
				c.Identity = v
			}
		case "unauthenticated_is_intended":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.UnauthenticatedIsIntended = true
		default:
			return d.Errf("unknown acme_gateway_console option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Console)(nil)
