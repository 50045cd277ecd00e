// Package caddyacmegw is the module root: importing it registers the ACME
// gateway's Caddy modules, so that
// `xcaddy build --with github.com/caddyacmegw/caddyacmegw` works.
package caddyacmegw

import (
	_ "github.com/caddyacmegw/caddyacmegw/caddyacmegw"
)
