package integration

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// Caddy as an ACME client: a second Caddy process, whose sites use the
// gateway as their CA with the acme issuer's profile option, gets one
// certificate under each of two profiles of issuer local, with their
// lifetimes.
func TestProfiles_CaddyObtainsUnderTwoLocalProfiles(t *testing.T) {
	dns := startDNS(t)
	clientHTTP := freePort(t) // where the client Caddy answers http-01
	g := startCaddy(t, profilesGateway(dns, clientHTTP, localProfiles))
	chains := caddyClientObtains(t, g, clientHTTP, map[string]string{
		"short.example.com": "short", "long.example.com": "long",
	})
	for name, lifetime := range map[string]time.Duration{"short.example.com": time.Hour, "long.example.com": 72 * time.Hour} {
		leaf := checkChain(t, g, parseChain(t, chains[name]), name)
		wantLifetime(t, leaf, lifetime)
		wantStoredProfile(t, g, leaf, strings.TrimSuffix(name, ".example.com"))
	}
}

// The same with issuer cm: each profile's procedure endpoint at the CM
// simulator receives the request of the site that names it.
func TestProfiles_CaddyObtainsUnderTwoCMProfiles(t *testing.T) {
	const clientProc = "ACME TLS Client"
	srv := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
		cmtest.DefaultProcedure: {}, clientProc: {},
	}})
	dns := startDNS(t)
	clientHTTP := freePort(t)
	ci := cmIssuer{Procedures: []string{cmtest.DefaultProcedure, clientProc}}
	g := startCaddy(t, profilesGateway(dns, clientHTTP, ci.block(t, srv)+fmt.Sprintf(`
		profile server {
			procedure %q
		}
		profile client {
			procedure %q
		}`, cmtest.DefaultProcedure, clientProc)))
	chains := caddyClientObtains(t, g, clientHTTP, map[string]string{
		"server.example.com": "server", "client.example.com": "client",
	})
	for name, chain := range chains {
		leaf := checkCMChain(t, srv, g, parseChain(t, chain), name)
		wantStoredProfile(t, g, leaf, strings.TrimSuffix(name, ".example.com"))
	}
	if got := srv.Counts().IssuedBy; got[cmtest.DefaultProcedure] != 1 || got[clientProc] != 1 {
		t.Fatalf("CM issued %v by procedure, want one through each", got)
	}
}

// profilesGateway are a gateway's directives: in memory, validating
// through dns and http-01 on httpPort, with more (issuer and profiles).
func profilesGateway(dns *testsrv.ZoneDNS, httpPort int, more string) string {
	return fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		%s`, dns.Addr(), httpPort, more)
}

// caddyClientObtains runs a Caddy process with one site per name, each
// getting its certificate from g under its profile through http-01 on
// httpPort, and returns the chains it stored, by name.
func caddyClientObtains(t *testing.T, g *gateway, httpPort int, profiles map[string]string) map[string][]byte {
	t.Helper()
	bin := buildCaddy(t)
	storageDir := filepath.Join(t.TempDir(), "client-storage")
	ready := freePort(t)
	var sites strings.Builder
	for name, profile := range profiles {
		fmt.Fprintf(&sites, `%s {
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
%shttp://127.0.0.1:%d {
	respond "up"
}
`, httpPort, freePort(t), storageDir, sites.String(), ready)
	p := runCaddyProcess(t, bin, caddyfile, fmt.Sprintf("http://127.0.0.1:%d/", ready))
	chains := map[string][]byte{}
	for name := range profiles {
		chains[name] = waitForStoredCert(t, p, storageDir, name, 90*time.Second)
	}
	return chains
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
