package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestConsole_RefusesToStartWithoutAuthentication loads configurations
// whose console has, or lacks, authentication in front of it.
func TestConsole_RefusesToStartWithoutAuthentication(t *testing.T) {
	const refusal = "acme_gateway_console refuses to start without authentication in front of it"
	cases := []struct {
		name, site string
		// refused is whether the load must fail.
		refused bool
	}{
		{"alone", `acme_gateway_console`, true},
		{"basic_auth only on other paths", `
	basic_auth /other/* {
		carol $2a$04$Zw5E5.6XqWmO2WmR1f2bqu6mNYwN8uPjrZC5WbVQ3dQ6w0Sg8o0qG
	}
	acme_gateway_console`, true},
		{"after basic_auth", `
	basic_auth {
		carol $2a$04$Zw5E5.6XqWmO2WmR1f2bqu6mNYwN8uPjrZC5WbVQ3dQ6w0Sg8o0qG
	}
	acme_gateway_console`, false},
		{"after forward_auth", `
	forward_auth 127.0.0.1:9 {
		uri /verify
		copy_headers Remote-User
	}
	acme_gateway_console {
		identity {http.request.header.Remote-User}
	}`, false},
		{"after a reverse_proxy with handle_response", `
	reverse_proxy 127.0.0.1:9 {
		@ok status 2xx
		handle_response @ok {
			request_header Remote-User {rp.header.Remote-User}
		}
	}
	acme_gateway_console {
		identity {http.request.header.Remote-User}
	}`, true},
		{"after forward_auth that sends a 401 to a login page", `
	forward_auth 127.0.0.1:9 {
		uri /verify
		copy_headers Remote-User
		@unauthorized status 401
		handle_response @unauthorized {
			redir https://login.example.com/
		}
	}
	acme_gateway_console {
		identity {http.request.header.Remote-User}
	}`, false},
		{"intended without authentication", `
	acme_gateway_console {
		unauthenticated_is_intended
	}`, false},
	}
	// One storage for all: a Caddy that loaded may still be writing its
	// site certificate there when its subtest ends.
	storageDir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	%s
	acme_gateway {
		storage memory
	}
}
`, globalOptions(t, "off", storageDir, ""), port, tc.site)
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if err != nil {
				t.Fatalf("adapting: %v\n%s", err, caddyfile)
			}
			err = caddy.Load(cfg, true)
			t.Cleanup(func() { _ = caddy.Stop() })
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), refusal) {
					t.Fatalf("load: %v; want it refused with %q", err, refusal)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
		})
	}

	// The console intended without authentication works, and names the
	// client's address as the officer.
	port := freePort(t)
	g := loadCaddyfile(t, fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway_console {
		unauthenticated_is_intended
	}
	acme_gateway {
		storage memory
	}
}
`, globalOptions(t, "off", storageDir, ""), port), port, "off", "/acme", storageDir)
	resp, err := g.HTTPClient().Get(fmt.Sprintf("https://localhost:%d/console/", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "unauthenticated:127.0.0.1:") {
		t.Fatalf("console intended without authentication: %d\n%s", resp.StatusCode, body)
	}
}
