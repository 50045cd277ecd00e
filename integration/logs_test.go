package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// An operator learns from Caddy's log at the default level that the
// gateway is up (where, with which storage and issuer), each certificate
// it issues, and each validation that fails and why.
func TestLogs_StartIssuanceAndFailedValidation(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	dns, resp := startDNS(t), startHTTP01(t)
	port, admin, storageDir := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t)), filepath.Join(t.TempDir(), "storage")
	logging := fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel INFO\n\t}\n", logFile)
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
		resolvers %s
		http_port %d
		deny_validation_to none
	}
}
`, globalOptions(t, admin, storageDir, logging), port, dns.Addr(), resp.Port())
	g := loadCaddyfile(t, caddyfile, port, admin, "/acme", storageDir)
	e := newACMEEnv(g, dns, resp)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	chain, _ := acmezObtain(t, c, acct, "logged.example.com")

	// A client that answers nothing: its validation fails.
	c.ChallengeSolvers = map[string]acmez.Solver{acme.ChallengeTypeHTTP01: silentSolver{}}
	if _, err := c.ObtainCertificateForSANs(t.Context(), acct, newKey(t), []string{"silent.example.com"}); err == nil {
		t.Fatal("a certificate without an answered challenge")
	}

	entries := readLog(t, logFile)
	ready := findLog(t, entries, "acme gateway ready")
	if ready["gateway"] != "default" || !strings.HasSuffix(fmt.Sprint(ready["directory"]), "/acme/directory") ||
		!strings.HasPrefix(fmt.Sprint(ready["storage"]), "bolt "+storageDir) ||
		!strings.HasPrefix(fmt.Sprint(ready["issuer"]), "local CA") || ready["registration"] != "open" {
		t.Errorf("start line %v", ready)
	}
	issued := findLog(t, entries, "certificate issued")
	if fmt.Sprint(issued["names"]) != "[logged.example.com]" || issued["serial"] != chain[0].SerialNumber.Text(16) ||
		!strings.HasSuffix(acct.Location, "/"+fmt.Sprint(issued["account"])) {
		t.Errorf("issuance line %v", issued)
	}
	failed := findLog(t, entries, "challenge failed")
	if failed["identifier"] != "silent.example.com" || failed["type"] != "http-01" ||
		!strings.HasPrefix(fmt.Sprint(failed["problem"]), "urn:ietf:params:acme:error:") || failed["error"] == nil {
		t.Errorf("failed validation line %v", failed)
	}
}

type silentSolver struct{}

func (silentSolver) Present(context.Context, acme.Challenge) error { return nil }
func (silentSolver) CleanUp(context.Context, acme.Challenge) error { return nil }

// readLog reads a JSON log file, one entry a line.
func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// findLog is the first entry with msg, of level info.
func findLog(t *testing.T, entries []map[string]any, msg string) map[string]any {
	t.Helper()
	for _, e := range entries {
		if e["msg"] == msg {
			if e["level"] != "info" {
				t.Errorf("%q logged at %v, want info", msg, e["level"])
			}
			return e
		}
	}
	t.Fatalf("no %q in the log", msg)
	return nil
}
