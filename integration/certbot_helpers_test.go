package integration

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// findCertbot returns the certbot on PATH.
func findCertbot(t testing.TB) string {
	t.Helper()
	return findClient(t, "certbot")
}

// certbot runs the certbot binary against one gateway, with its state in
// directories of its own.
type certbot struct {
	bin       string
	server    string
	caBundle  string
	configDir string
	workDir   string
	logsDir   string
	// logStart is the size of the log before the latest run: certbot
	// 2.1 appends every run to one letsencrypt.log.
	logStart int64
}

// newCertbot sets up runs of bin (from findCertbot, called before the
// gateway starts so that a skip costs nothing) against g.
func newCertbot(t testing.TB, bin string, g *gateway) *certbot {
	t.Helper()
	dir := t.TempDir()
	return &certbot{
		bin:       bin,
		server:    g.Directory,
		caBundle:  g.RootFile,
		configDir: filepath.Join(dir, "config"),
		workDir:   filepath.Join(dir, "work"),
		logsDir:   filepath.Join(dir, "logs"),
	}
}

// run runs `certbot <subcommand> <common flags> <args>` and returns its
// combined output; err is non-nil when it exits non-zero or times out.
func (c *certbot) run(t testing.TB, subcommand string, args ...string) (string, error) {
	t.Helper()
	argv := append([]string{subcommand,
		"--config-dir", c.configDir,
		"--work-dir", c.workDir,
		"--logs-dir", c.logsDir,
		"--non-interactive",
		"--agree-tos",
		"-m", "admin@example.com",
		"--no-eff-email",
		"--server", c.server,
		"--no-random-sleep-on-renew",
	}, args...)
	c.logStart = 0
	if fi, err := os.Stat(c.logFile()); err == nil {
		c.logStart = fi.Size()
	}
	// certbot talks to the gateway through python-requests.
	return runClient(t, c.bin, []string{"REQUESTS_CA_BUNDLE=" + c.caBundle}, argv...)
}

// mustRun is run that fails the test, showing certbot's output and log,
// when certbot does not succeed.
func (c *certbot) mustRun(t testing.TB, subcommand string, args ...string) string {
	t.Helper()
	out, err := c.run(t, subcommand, args...)
	if err != nil {
		t.Fatalf("certbot %s %s: %v\n--- output ---\n%s\n--- log ---\n%s",
			subcommand, strings.Join(args, " "), err, out, c.log())
	}
	return out
}

func (c *certbot) logFile() string { return filepath.Join(c.logsDir, "letsencrypt.log") }

// log returns what the latest run wrote to certbot's log: the ACME
// requests and responses, and the tracebacks, that its console output
// leaves out.
func (c *certbot) log() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if c.logStart <= int64(len(b)) {
		b = b[c.logStart:]
	}
	return string(b)
}

// liveFile is the path of one of the files certbot keeps for the current
// certificate of a lineage (cert.pem, chain.pem, fullchain.pem, privkey.pem).
func (c *certbot) liveFile(lineage, file string) string {
	return filepath.Join(c.configDir, "live", lineage, file)
}

// checkLiveCert parses the lineage's current certificate, checks it holds
// exactly names and chains to the gateway's root for server auth, and
// returns it.
func (c *certbot) checkLiveCert(t testing.TB, g *gateway, lineage string, names ...string) *x509.Certificate {
	t.Helper()
	chain := readCertChain(t, c.liveFile(lineage, "fullchain.pem"))
	leaf := chain[0]
	certOnly := readCertChain(t, c.liveFile(lineage, "cert.pem"))
	if len(certOnly) != 1 || !certOnly[0].Equal(leaf) {
		t.Fatalf("cert.pem holds %d certificates, not the leaf of fullchain.pem", len(certOnly))
	}
	got := slices.Sorted(slices.Values(leaf.DNSNames))
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Fatalf("certificate names %v, want %v", got, want)
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	for _, name := range names {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:       name,
			Roots:         g.Roots,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Fatalf("certificate does not verify for %s: %v", name, err)
		}
	}
	return leaf
}

// readCertChain parses every CERTIFICATE block of a PEM file.
func readCertChain(t testing.TB, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("%s: unexpected PEM block %q", path, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		certs = append(certs, cert)
	}
	if len(bytes.TrimSpace(data)) != 0 || len(certs) == 0 {
		t.Fatalf("%s: not a PEM certificate chain", path)
	}
	return certs
}

// txtHookServer lets certbot's manual hooks, which are separate
// processes, publish dns-01 TXT records in the test DNS server:
// POST /add and /del with form values name and value. One name may have
// several values at once (a wildcard and its base domain share one).
type txtHookServer struct {
	url string
	dns *testsrv.ZoneDNS

	mu     sync.Mutex
	values map[string][]string
	adds   int
	dels   int
}

func startTXTHookServer(t testing.TB, dns *testsrv.ZoneDNS) *txtHookServer {
	t.Helper()
	s := &txtHookServer{dns: dns, values: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *txtHookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	name, value := r.FormValue("name"), r.FormValue("value")
	if name == "" || value == "" {
		http.Error(w, "name and value required", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/add":
		s.adds++
		s.values[name] = append(s.values[name], value)
	case "/del":
		s.dels++
		s.values[name] = slices.DeleteFunc(s.values[name], func(v string) bool { return v == value })
	default:
		http.NotFound(w, r)
		return
	}
	if len(s.values[name]) == 0 {
		delete(s.values, name)
		s.dns.ClearTXT(name)
	} else {
		s.dns.SetTXT(name, s.values[name]...)
	}
	w.WriteHeader(http.StatusNoContent)
}

// counts returns how many add and del calls arrived, and how many names
// still have TXT values.
func (s *txtHookServer) counts() (adds, dels, left int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adds, s.dels, len(s.values)
}

// writeHook writes a shell script for --manual-auth-hook "<script> add"
// and --manual-cleanup-hook "<script> del". It uses curl, or python3
// (which certbot itself needs) when curl is missing.
func (s *txtHookServer) writeHook(t testing.TB) string {
	t.Helper()
	script := `#!/bin/sh
set -eu
url="` + s.url + `/$1"
name="_acme-challenge.${CERTBOT_DOMAIN}"
if command -v curl >/dev/null 2>&1; then
	exec curl -fsS --noproxy '*' --max-time 10 -X POST \
		--data-urlencode "name=${name}" --data-urlencode "value=${CERTBOT_VALIDATION}" "$url"
fi
exec python3 -c '
import sys, urllib.parse, urllib.request
data = urllib.parse.urlencode({"name": sys.argv[2], "value": sys.argv[3]}).encode()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.open(sys.argv[1], data=data, timeout=10)
' "$url" "$name" "${CERTBOT_VALIDATION}"
`
	path := filepath.Join(t.TempDir(), "txt-hook.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// errExitCode reports whether err is certbot exiting with a failure
// status, as opposed to not running at all or timing out.
func errExitCode(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() > 0
}
