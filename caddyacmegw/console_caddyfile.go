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
		var err error
		switch d.Val() {
		case "gateway":
			err = oneArg(d, &c.Gateway)
		case "path_prefix":
			err = oneArg(d, &c.PathPrefix)
		case "identity":
			err = oneArg(d, &c.Identity)
		case "unauthenticated_is_intended":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.UnauthenticatedIsIntended = true
		default:
			return d.Errf("unknown acme_gateway_console option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Console)(nil)
