// Command caddy builds Caddy with its standard modules and the ACME gateway.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddyacmegw/caddyacmegw"
)

func main() {
	caddycmd.Main()
}
