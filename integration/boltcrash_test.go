package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// crashWorkers is how many clients issue while the process is killed.
const crashWorkers = 6

// A Caddy process on the default storage killed (SIGKILL) in the middle
// of a load: once a new process runs on the same storage, every account
// and certificate a client was told about is there, as it was told, and
// issuance goes on. A second process on the same storage meanwhile is
// refused at start with a message that says why.
func TestDefaultStorage_KilledProcessLosesNothingItAnswered(t *testing.T) {
	bin := buildCaddy(t)
	dns := startDNS(t)
	storageDir := filepath.Join(t.TempDir(), "storage")
	port := freePort(t)
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
		challenges dns-01
		resolvers %s
		deny_validation_to none
	}
}
`, globalOptions(t, "off", storageDir, ""), port, dns.Addr())
	directory := fmt.Sprintf("https://localhost:%d/acme/directory", port)
	p := runCaddyProcess(t, bin, caddyfile, directory)
	g := withRoots(t, &gateway{Directory: directory}, storageDir)
	e := newACMEEnv(g, dns, nil)

	refuseSecondProcess(t, bin, caddyfile)

	load := &crashLoad{certs: map[string]crashCert{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Go(func() { load.work(ctx, t, e) })
	}
	waitFor(t, 60*time.Second, "certificates issued before the kill", func() bool { return load.count() >= 2*crashWorkers })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	stop()
	wg.Wait()

	runCaddyProcess(t, bin, caddyfile, directory)
	c, _ := acmezClient(e, acme.ChallengeTypeDNS01)
	load.mu.Lock()
	defer load.mu.Unlock()
	for _, a := range load.accounts {
		found, err := c.GetAccount(t.Context(), acme.Account{PrivateKey: a.PrivateKey})
		if err != nil || found.Location != a.Location {
			t.Fatalf("account %s after the kill: %v (found %q)", a.Location, err, found.Location)
		}
	}
	for url, want := range load.certs {
		chains, err := c.GetCertificateChain(t.Context(), want.account, url)
		if err != nil || len(chains) == 0 || !bytes.Equal(chains[0].ChainPEM, want.chain) {
			t.Fatalf("certificate %s after the kill: %v", url, err)
		}
	}
	t.Logf("%d accounts and %d certificates answered before the kill are all there", len(load.accounts), len(load.certs))
	chain, _ := acmezObtain(t, c, load.accounts[0], "after-kill.example.com")
	checkChain(t, g, chain, "after-kill.example.com")
}

// refuseSecondProcess starts another Caddy on the same storage and
// expects it to exit, saying that the database is in use.
func refuseSecondProcess(t testing.TB, bin, caddyfile string) {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "Caddyfile")
	// Its own ports, so that what stops it is the database, not a port
	// in use.
	second := portRE.ReplaceAllStringFunc(caddyfile, func(string) string { return fmt.Sprintf("localhost:%d {", freePort(t)) })
	second = httpPortRE.ReplaceAllStringFunc(second, func(string) string { return fmt.Sprintf("http_port %d", freePort(t)) })
	if err := os.WriteFile(config, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "run", "--config", config, "--adapter", "caddyfile").CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a second Caddy on the same storage: %v, want it refused at start\n%s", err, out)
	}
	t.Logf("a second Caddy on the same storage: %v: %s", err, lastLine(out))
	if !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("a second Caddy on the same storage failed without saying the database is in use:\n%s", out)
	}
}

var (
	portRE     = regexp.MustCompile(`localhost:[0-9]+ \{`)
	httpPortRE = regexp.MustCompile(`http_port [0-9]+`)
)

// lastLine is the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// crashLoad is what the clients were told: their accounts, and each
// certificate URL with the account that ordered it and the chain
// downloaded from it.
type crashLoad struct {
	mu       sync.Mutex
	accounts []acme.Account
	certs    map[string]crashCert
	seq      int
}

type crashCert struct {
	account acme.Account
	chain   []byte
}

// work issues certificates with an account of its own until ctx ends or a
// request fails (as they do once the process is killed).
func (l *crashLoad) work(ctx context.Context, t *testing.T, e *acmeEnv) {
	c, _ := acmezClient(e, acme.ChallengeTypeDNS01)
	acct, err := c.NewAccount(ctx, acme.Account{TermsOfServiceAgreed: true, PrivateKey: newKey(t)})
	if err != nil {
		return
	}
	l.mu.Lock()
	l.accounts = append(l.accounts, acct)
	l.mu.Unlock()
	for ctx.Err() == nil {
		l.mu.Lock()
		l.seq++
		name := fmt.Sprintf("c%d.crash.example.com", l.seq)
		l.mu.Unlock()
		certs, err := c.ObtainCertificateForSANs(ctx, acct, newKey(t), []string{name})
		if err != nil || len(certs) == 0 {
			return
		}
		l.mu.Lock()
		l.certs[certs[0].URL] = crashCert{account: acct, chain: certs[0].ChainPEM}
		l.mu.Unlock()
	}
}

func (l *crashLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.certs)
}
