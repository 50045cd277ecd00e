package caddyacmegw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// cli runs `caddy acme-gateway <args>` against the env's admin server and
// returns what it printed on stdout and on stderr.
func (e *adminEnv) cli(args ...string) (stdout, stderr string, err error) {
	e.t.Helper()
	cmd := &cobra.Command{Use: "acme-gateway", SilenceUsage: true}
	setupCommand(cmd)
	// The env's flags first, so that a test's own win.
	cmd.SetArgs(append([]string{"--address=" + e.addr, "--name=" + e.g.h.Name, "--officer=cli-officer"}, args...))
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// mustCLI runs a command that has to succeed and print nothing on stderr.
func (e *adminEnv) mustCLI(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.cli(args...)
	if err != nil || errOut != "" {
		e.t.Fatalf("acme-gateway %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// cliFails runs a command that has to fail with "error: <want>" as the
// only line on stderr and nothing on stdout.
func (e *adminEnv) cliFails(want string, args ...string) {
	e.t.Helper()
	out, errOut, err := e.cli(args...)
	if err == nil || out != "" || errOut != "error: "+want+"\n" {
		e.t.Errorf("acme-gateway %s: %v\nstdout %q\nstderr %q\nwant stderr %q", strings.Join(args, " "), err, out, errOut, "error: "+want+"\n")
	}
}

// mustJSON runs a command with --json and decodes what it printed.
func (e *adminEnv) mustJSON(out any, args ...string) {
	e.t.Helper()
	raw := e.mustCLI(append(args, "--json")...)
	if err := json.Unmarshal([]byte(raw), out); err != nil {
		e.t.Fatalf("acme-gateway %s --json: %v\n%s", strings.Join(args, " "), err, raw)
	}
}

func TestCommand_RegisterPrintsKeyOnceAndCertbotLine(t *testing.T) {
	e := newAdminEnv(t)
	out := e.mustCLI("register", "--domains", "a.example,*.B.example", "--expires", "720h", "--description", "team a", "--key-id", "team-a")

	reg := e.g.registration("team-a")
	key := base64.RawURLEncoding.EncodeToString(reg.HMACKey)
	for _, want := range []string{
		"key id:           team-a",
		"HMAC key:         " + key,
		"allowed domains:  *.b.example, a.example",
		"shown only this once",
		"certbot certonly --server 'https://<acme-host>/acme/directory' --eab-kid=team-a --eab-hmac-key=" + key + " -d '*.b.example' -d a.example\n",
		"Replace <acme-host>",
		"Registration on this gateway is open: a client may also create an account\nwithout a key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if reg.Description != "team a" || reg.Expires.IsZero() || reg.CreatedBy != "cli-officer" {
		t.Errorf("stored %+v", reg)
	}

	// With base_url configured the directory is known, and no guess is admitted.
	e.g.h.BaseURL = "https://acme.example.com/acme"
	out = e.mustCLI("register", "--domains", "c.example")
	if !strings.Contains(out, "--server https://acme.example.com/acme/directory ") || strings.Contains(out, "<acme-host>") {
		t.Errorf("output with base_url:\n%s", out)
	}
	e.g.h.RegistrationMode = gateway.RegistrationPreregistered
	out = e.mustCLI("register", "--domains", "d.example", "--directory", "https://ca.corp/acme/directory")
	if !strings.Contains(out, "--server https://ca.corp/acme/directory ") || strings.Contains(out, "is open") {
		t.Errorf("output with --directory on a preregistered gateway:\n%s", out)
	}
}

func TestCommand_RegisterJSON(t *testing.T) {
	e := newAdminEnv(t)
	out := e.mustCLI("register", "--domains", "a.example", "--expires", "2099-01-02T03:04:05Z", "--json")
	var got registerOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	key, _ := base64.RawURLEncoding.DecodeString(got.HMACKey)
	if !bytes.Equal(key, e.g.registration(got.KeyID).HMACKey) || got.DirectoryKnown ||
		!strings.Contains(got.Certbot, "--eab-hmac-key="+got.HMACKey) || got.Expires == nil || got.Expires.Year() != 2099 || got.BindingRequired {
		t.Fatalf("register --json: %s", out)
	}
}

// Failures print one plain line, "error: " and the gateway's message, on
// stderr and nothing on stdout; cobra's usage errors say what was wrong.
func TestCommand_ErrorsArePlainMessages(t *testing.T) {
	e := newAdminEnv(t)
	e.mustCLI("register", "--domains", "a.example", "--key-id", "a")
	for _, tc := range []struct {
		want string
		args []string
	}{
		{`allowed_domains: domain "bad domain": idna: disallowed rune U+0020`, []string{"register", "--domains", "bad domain"}},
		{"a registration with key id \"a\" exists", []string{"register", "--domains", "b.example", "--key-id", "a"}},
		{"registration nope not found", []string{"registrations", "show", "nope"}},
		{"registration nope not found", []string{"registrations", "disable", "nope"}},
		{"registration nope not found", []string{"registrations", "delete", "nope"}},
		{"nothing to change: give --domains, --emails, --profiles, --expires, --no-expiry, --procedure or --description", []string{"registrations", "edit", "a"}},
		{`expires_in must be a positive duration like "720h" or "30d"`, []string{"registrations", "edit", "a", "--expires", "soon"}},
		{"account nope not found", []string{"accounts", "show", "nope"}},
		{"account nope not found", []string{"accounts", "deactivate", "nope"}},
		{`status "done" is none of valid, deactivated, revoked`, []string{"accounts", "--status", "done"}},
		{"account nope not found", []string{"orders", "--account", "nope"}},
		{`serial "xyz" is not a hexadecimal number`, []string{"certificates", "show", "xyz"}},
		{"certificate abc not found", []string{"certificates", "download", "0ABC"}},
		{"reason 2 not accepted; use 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded) or 5 (cessationOfOperation)", []string{"certificates", "revoke", "abc", "--reason", "2"}},
		{"limit must be a number from 1 to 500", []string{"audit", "--limit", "0"}},
	} {
		e.cliFails(tc.want, tc.args...)
	}
	if _, errOut, err := e.cli("registrations", "--name", "nope"); err == nil || errOut != "error: no ACME gateway named \"nope\" is running\n" {
		t.Errorf("unknown gateway: %v %q", err, errOut)
	}
	if _, errOut, err := e.cli("audit", "--address", "127.0.0.1:1"); err == nil || !strings.HasPrefix(errOut, "error: reaching the admin API: ") {
		t.Errorf("no admin API: %v %q", err, errOut)
	}
	// Usage errors come from cobra, before anything is sent.
	for args, want := range map[string]string{
		"registrations disable": "accepts 1 arg(s), received 0",
		"register":              `required flag(s) "domains" not set`,
		"registrations frob":    `unknown command "frob" for "acme-gateway registrations"`,
	} {
		if _, _, err := e.cli(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("acme-gateway %s: %v, want %q", args, err, want)
		}
	}
}

// TestCommand_ExitStatus runs the command as the caddy binary does, in a
// process of its own, and reads its exit status.
func TestCommand_ExitStatus(t *testing.T) {
	if args := os.Getenv("ACMEGW_CADDY_ARGS"); args != "" {
		os.Args = append([]string{"caddy"}, strings.Fields(args)...)
		caddycmd.Main()
		os.Exit(0)
	}
	e := newAdminEnv(t)
	e.mustCLI("register", "--domains", "a.example", "--key-id", "a")
	common := " --address " + e.addr + " --name " + e.g.h.Name
	for _, tc := range []struct {
		args           string
		status         int
		stdout, stderr string
	}{
		{"acme-gateway registrations show a", 0, "key id:", ""},
		{"acme-gateway registrations show nope", 1, "", "error: registration nope not found\n"},
		{"acme-gateway registrations show", 1, "", "Error: accepts 1 arg(s), received 0\n"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCommand_ExitStatus$")
		cmd.Env = append(os.Environ(), "ACMEGW_CADDY_ARGS="+tc.args+common)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != tc.status || !strings.Contains(out.String(), tc.stdout) || (tc.stdout == "" && out.Len() > 0) ||
			!strings.HasSuffix(errOut.String(), tc.stderr) || (tc.stderr == "" && errOut.Len() > 0) {
			t.Errorf("caddy %s: status %d, want %d\nstdout %q\nstderr %q", tc.args, status, tc.status, out.String(), errOut.String())
		}
	}
}

func TestShellJoin_QuotesWhatTheShellWouldChange(t *testing.T) {
	got := shellJoin([]string{"certbot", "-d", "*.example.com", "https://<acme-host>/acme/directory", "it's", "a_b-c.d"})
	want := `certbot -d '*.example.com' 'https://<acme-host>/acme/directory' 'it'\''s' a_b-c.d`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestOpensslSerial_UpperCaseWholeBytes(t *testing.T) {
	for in, want := range map[string]string{"a": "0A", "abc": "0ABC", "ff": "FF", "0": "00", "1fffe": "01FFFE", "not hex": "not hex"} {
		if got := opensslSerial(in); got != want {
			t.Errorf("opensslSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
