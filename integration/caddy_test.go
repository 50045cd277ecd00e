package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// gateway is a running Caddy serving the ACME gateway over HTTPS on
// loopback, with a certificate from Caddy's local CA.
type gateway struct {
	// Directory is the ACME directory URL.
	Directory string
	// Roots trusts Caddy's local CA: the gateway's TLS certificate and
	// the certificates it issues both chain to it.
	Roots *x509.CertPool
	// RootFile is the local CA's root certificate as a PEM file.
	RootFile string
	// Port is the HTTPS port.
	Port int
	// AdminAddr is Caddy's admin endpoint.
	AdminAddr string
}

// freePort returns a TCP port that was free a moment ago on every
// interface (Caddy listens on ":port"). It picks from below the kernel's
// ephemeral range, so that outgoing connections of other processes, such
// as parallel test binaries, cannot take it in the meantime, and it never
// hands out one port twice.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		if portsUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[port] = true
		return port
	}
	t.Fatal("no free port found")
	return 0
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// startCaddy runs Caddy in this process with a site on a free port whose
// only handler is `acme_gateway { <directives> }`, with
// `deny_validation_to none` unless the directives set it. Caddy is stopped when
// the test ends. One Caddy runs at a time, so tests using it are not
// parallel.
func startCaddy(t testing.TB, directives string) *gateway {
	t.Helper()
	if !strings.Contains(directives, "deny_validation_to") {
		// Everything the tests validate lives on loopback, which the
		// gateway refuses to connect to by default.
		directives += "\ndeny_validation_to none"
	}
	port := freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	storageDir := filepath.Join(t.TempDir(), "storage")
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
%s
	}
}
`, globalOptions(t, admin, storageDir, ""), port, indent(directives, "\t\t"))
	return loadCaddyfile(t, caddyfile, port, admin, "/acme", storageDir)
}

// restartableCaddy is a gateway whose Caddyfile, ports and file storage
// stay the same across restarts of the in-process Caddy.
type restartableCaddy struct {
	caddyfile, admin, storageDir string
	port                         int
}

// newRestartableCaddy lays out a Caddyfile like startCaddy's, on a
// file_system storage that outlives restarts.
func newRestartableCaddy(t testing.TB, directives string) *restartableCaddy {
	t.Helper()
	rc := &restartableCaddy{
		port:       freePort(t),
		admin:      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		storageDir: filepath.Join(t.TempDir(), "storage"),
	}
	rc.caddyfile = fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
%s
	}
}
`, globalOptions(t, rc.admin, rc.storageDir, ""), rc.port, indent(directives+"\ndeny_validation_to none", "\t\t"))
	return rc
}

// start (re)starts Caddy with the same configuration and storage.
func (rc *restartableCaddy) start(t testing.TB) *gateway {
	t.Helper()
	return loadCaddyfile(t, rc.caddyfile, rc.port, rc.admin, "/acme", rc.storageDir)
}

// globalOptions is the Caddyfile's global block for a test Caddy: admin
// at admin ("off" for none), no saved config, no trust store changes, no
// HTTP/3 listener, the local CA, a free HTTP port, and Caddy's data in
// storageDir; extra lines go at its end.
func globalOptions(t testing.TB, admin, storageDir, extra string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	skip_install_trust
	servers {
		protocols h1 h2
	}
	local_certs
	http_port %d
	storage file_system %s
%s
}
`, admin, freePort(t), storageDir, extra)
}

// loadCaddyfile adapts and runs a whole Caddyfile.
// storageDir is the file_system storage it configures, which holds the
// local CA.
func loadCaddyfile(t testing.TB, caddyfile string, port int, admin, prefix, storageDir string) *gateway {
	t.Helper()
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	g := withRoots(t, &gateway{
		Directory: fmt.Sprintf("https://localhost:%d%s/directory", port, prefix),
		Port:      port,
		AdminAddr: admin,
	}, storageDir)
	g.waitReady(t)
	return g
}

// withRoots sets g's RootFile and Roots to the local CA of the
// file_system storage in storageDir.
func withRoots(t testing.TB, g *gateway, storageDir string) *gateway {
	t.Helper()
	g.RootFile = filepath.Join(storageDir, "pki", "authorities", "local", "root.crt")
	pemBytes, err := os.ReadFile(g.RootFile)
	if err != nil {
		t.Fatalf("reading local CA root: %v", err)
	}
	g.Roots = x509.NewCertPool()
	if !g.Roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("local CA root is not PEM")
	}
	return g
}

// HTTPClient trusts the gateway's CA.
func (g *gateway) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.Roots}},
	}
}

func (g *gateway) waitReady(t testing.TB) {
	t.Helper()
	c := g.HTTPClient()
	var lastErr error
	for i := 0; i < 100; i++ {
		resp, err := c.Get(g.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			lastErr = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			lastErr = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway not ready: %v", lastErr)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = prefix + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}
