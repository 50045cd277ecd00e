package integration

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Caddy as an ACME client: a second Caddy process, whose sites use the
// gateway as their CA with the acme issuer's profile option, gets one
// certificate under each of two profiles, with their lifetimes.
func TestProfiles_CaddyObtainsUnderTwoProfiles(t *testing.T) {
	bin := buildCaddy(t)
	dns := startDNS(t)
	clientHTTP := freePort(t) // where the client Caddy answers http-01
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		%s`, dns.Addr(), clientHTTP, localProfiles))

	storageDir := filepath.Join(t.TempDir(), "client-storage")
	ready := freePort(t)
	site := func(name, profile string) string {
		return fmt.Sprintf(`%s {
	tls {
		issuer acme {
			dir %s
			trusted_roots %s
			profile %s
			disable_tlsalpn_challenge
		}
	}
	respond %q
}
`, name, g.Directory, g.RootFile, profile, profile)
	}
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	http_port %d
	https_port %d
	storage file_system %s
}
%s%shttp://127.0.0.1:%d {
	respond "up"
}
`, clientHTTP, freePort(t), storageDir, site("short.example.com", "short"), site("long.example.com", "long"), ready)
	p := runCaddyProcess(t, bin, caddyfile, fmt.Sprintf("http://127.0.0.1:%d/", ready))

	for name, lifetime := range map[string]time.Duration{"short.example.com": time.Hour, "long.example.com": 72 * time.Hour} {
		pemBytes := waitForStoredCert(t, p, storageDir, name, 90*time.Second)
		leaf := checkChain(t, g, parseChain(t, pemBytes), name)
		wantLifetime(t, leaf, lifetime)
		wantStoredProfile(t, g, leaf, name[:len(name)-len(".example.com")])
	}
}

// waitForStoredCert returns the certificate chain a Caddy process stored
// for name under storageDir once it is there.
func waitForStoredCert(t testing.TB, p *caddyProcess, storageDir, name string, within time.Duration) []byte {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var found []byte
		_ = filepath.WalkDir(filepath.Join(storageDir, "certificates"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == name+".crt" {
				found, _ = os.ReadFile(path)
				return fs.SkipAll
			}
			return nil
		})
		if len(found) > 0 {
			return found
		}
		select {
		case <-p.done:
			t.Fatalf("client caddy exited: %v\n%s", p.err, p.output())
		default:
		}
	}
	t.Fatalf("client caddy stored no certificate for %s within %s\n%s", name, within, p.output())
	return nil
}
