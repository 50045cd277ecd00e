// Package integration drives a real Caddy, configured by Caddyfile, with
// real ACME clients over loopback.
package integration

import (
	"os"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddyacmegw/caddyacmegw"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// Caddy keeps its data (storage, the local CA) under XDG_DATA_HOME:
	// give this test process a directory of its own.
	dir, err := os.MkdirTemp("", "acmegw-integration-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir+"/data")
	os.Setenv("XDG_CONFIG_HOME", dir+"/config")
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}
