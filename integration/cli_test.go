package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cliTimeout bounds one run of a `caddy acme-gateway` subcommand, which is
// one or two requests to the admin API.
const cliTimeout = 30 * time.Second

var caddyBinary struct {
	once sync.Once
	path string
	err  error
}

// buildCaddy builds ./cmd/caddy, the real binary with this module, once per
// test process. With the race detector when this test binary has it, so
// that the build reuses the packages `go test -race` compiled already.
func buildCaddy(t testing.TB) string {
	t.Helper()
	caddyBinary.once.Do(func() {
		start := time.Now()
		caddyBinary.path, caddyBinary.err = goBuildCaddy()
		t.Logf("built %s in %s", caddyBinary.path, time.Since(start).Round(time.Millisecond))
	})
	if caddyBinary.err != nil {
		t.Fatalf("building caddy: %v", caddyBinary.err)
	}
	return caddyBinary.path
}

func goBuildCaddy() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	// TestMain gives this process a directory that it removes at the end;
	// XDG_DATA_HOME is inside it.
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		return "", errors.New("XDG_DATA_HOME is not set; TestMain sets it")
	}
	out := filepath.Join(filepath.Dir(data), "bin", "caddy")
	args := []string{"build", "-o", out}
	if raceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/caddy")...)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), root, err, msg)
	}
	return out, nil
}

// raceEnabled reports whether this binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// cli runs `caddy acme-gateway` against one gateway's admin endpoint as
// one officer.
type cli struct {
	bin, addr, officer string
}

// run runs `caddy acme-gateway <subcommand> --address <admin> --officer
// <name> <args>` and returns its standard output and error output; a
// subcommand may be two words ("certificates revoke"). The flags come
// first so that args may hold "--".
func (c *cli) run(t testing.TB, subcommand string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	argv := append(append([]string{"acme-gateway"}, strings.Fields(subcommand)...), "--address", c.addr, "--officer", c.officer)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, c.bin, argv...)
	cmd.WaitDelay = 5 * time.Second
	// A race-enabled binary otherwise sleeps a second before exiting.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	t.Logf("caddy acme-gateway %s: %v (%s)", subcommand, err, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		err = fmt.Errorf("caddy %s timed out: %w", strings.Join(argv, " "), ctx.Err())
	}
	return out.String(), errOut.String(), err
}

// mustRun is run that fails the test unless the command succeeds.
func (c *cli) mustRun(t testing.TB, subcommand string, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, subcommand, args...)
	if err != nil {
		t.Fatalf("caddy acme-gateway %s %s: %v\n--- stdout ---\n%s\n--- stderr ---\n%s", subcommand, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// mustJSON runs a subcommand with --json and decodes what it prints.
func (c *cli) mustJSON(t testing.TB, v any, subcommand string, args ...string) {
	t.Helper()
	out := c.mustRun(t, subcommand, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("caddy acme-gateway %s --json %s printed no JSON: %v\n%s", subcommand, strings.Join(args, " "), err, out)
	}
}

// An officer's whole round with the real binary: register a client, who
// enrolls with certbot; find its certificate, revoke it, see the client's
// own revocation refused as alreadyRevoked, disable the registration, and
// read it all back from the audit trail.
func TestCLI_RegisterEnrollRevokeDisableAudit(t *testing.T) {
	certbotBin := findCertbot(t)
	bin := buildCaddy(t)
	dns := startDNS(t)
	httpPort := freePort(t)
	g := startCaddy(t, preregistered(dns, httpPort))
	officer := &cli{bin: bin, addr: g.AdminAddr, officer: "officer-one"}
	const name = "cli.example.com"

	var reg struct {
		registrationJSON
		Directory      string `json:"directory"`
		DirectoryKnown bool   `json:"directory_known"`
		Certbot        string `json:"certbot_command"`
	}
	officer.mustJSON(t, &reg, "register", "--domains", name, "--description", "CLI test")
	if reg.KeyID == "" || reg.HMACKey == "" || !slices.Equal(reg.AllowedDomains, []string{name}) {
		t.Fatalf("register printed key id %q, HMAC key set %v, domains %v", reg.KeyID, reg.HMACKey != "", reg.AllowedDomains)
	}
	// Without base_url the gateway cannot know the host clients reach it at.
	if reg.DirectoryKnown || !strings.Contains(reg.Directory, "<acme-host>") {
		t.Fatalf("directory %q (known %v), want a placeholder host", reg.Directory, reg.DirectoryKnown)
	}
	for flag, want := range map[string]string{"--eab-kid": reg.KeyID, "--eab-hmac-key": reg.HMACKey, "-d": name} {
		if got := flagValue(reg.Certbot, flag); got != want {
			t.Fatalf("certbot line %q: %s is %q, want %q", reg.Certbot, flag, got, want)
		}
	}

	cb := newCertbot(t, certbotBin, g)
	cb.mustRun(t, "certonly", certbotEAB(reg.KeyID, reg.HMACKey, certbotStandalone(httpPort, name)...)...)
	leaf := cb.checkLiveCert(t, g, name, name)
	serial := leaf.SerialNumber.Text(16)

	var listed struct {
		Certificates []certificateJSON `json:"certificates"`
	}
	officer.mustJSON(t, &listed, "certificates", "--domain", name)
	if len(listed.Certificates) != 1 || listed.Certificates[0].Serial != serial || listed.Certificates[0].Status != "valid" {
		t.Fatalf("certificates for %s: %+v, want serial %s valid", name, listed.Certificates, serial)
	}

	out := officer.mustRun(t, "certificates revoke", serial, "--reason", "4")
	if !strings.Contains(strings.ToLower(out), serial) || !strings.Contains(out, "superseded") {
		t.Fatalf("revoke printed %q", out)
	}
	officer.mustJSON(t, &listed, "certificates", "--serial", serial)
	if c := listed.Certificates; len(c) != 1 || c[0].Status != "revoked" || c[0].RevocationReason == nil || *c[0].RevocationReason != 4 {
		t.Fatalf("after revoke: %+v, want revoked with reason 4", c)
	}
	if out, errOut, err := officer.run(t, "certificates revoke", serial); err == nil || errOut != "error: certificate "+serial+" is revoked already\n" {
		t.Fatalf("second revoke through the CLI: err %v\n%s\n%s", err, out, errOut)
	}

	// The client learns of the officer's revocation from the gateway.
	revokeOut, err := cb.run(t, "revoke", "--cert-path", cb.liveFile(name, "cert.pem"), "--no-delete-after-revoke")
	wantCertbotProblem(t, cb, revokeOut, err, "alreadyRevoked")

	// "--": a random key id may begin with "-".
	out = officer.mustRun(t, "registrations disable", "--", reg.KeyID)
	if !strings.Contains(out, reg.KeyID) || !strings.Contains(out, "disabled") {
		t.Fatalf("disable printed %q", out)
	}
	var regs struct {
		Registrations []registrationJSON `json:"registrations"`
	}
	officer.mustJSON(t, &regs, "registrations")
	if len(regs.Registrations) != 1 || regs.Registrations[0].Status != "disabled" || regs.Registrations[0].AccountID == "" {
		t.Fatalf("registrations %+v, want one, disabled, bound to certbot's account", regs.Registrations)
	}
	// certbot's account stays, but may order nothing more.
	orderOut, err := cb.run(t, "certonly", append([]string{"--force-renewal", "--cert-name", name}, certbotStandalone(httpPort, name)...)...)
	wantCertbotProblem(t, cb, orderOut, err, "unauthorized")

	var audit struct {
		Audit []auditJSON `json:"audit"`
	}
	officer.mustJSON(t, &audit, "audit")
	var actions []string
	for _, e := range audit.Audit {
		if e.Actor != "officer-one" {
			t.Fatalf("audit entry %+v names actor %q, want officer-one", e, e.Actor)
		}
		actions = append(actions, e.Action+" "+e.Target)
	}
	want := []string{
		"registration.create " + reg.KeyID,
		"certificate.revoke " + serial,
		"registration.update " + reg.KeyID,
	}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit trail %q, want %q", actions, want)
	}
	var detail struct {
		Reason int `json:"reason"`
	}
	if err := json.Unmarshal(audit.Audit[1].Detail, &detail); err != nil || detail.Reason != 4 {
		t.Fatalf("revocation audit detail %s: reason %d, want 4 (%v)", audit.Audit[1].Detail, detail.Reason, err)
	}
}

// flagValue finds flag in a command line of unquoted words, as "flag value"
// or "flag=value", and returns its value.
func flagValue(line, flag string) string {
	words := strings.Fields(line)
	for i, w := range words {
		if v, ok := strings.CutPrefix(w, flag+"="); ok {
			return v
		}
		if w == flag && i+1 < len(words) {
			return words[i+1]
		}
	}
	return ""
}
