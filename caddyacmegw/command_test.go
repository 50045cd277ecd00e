package caddyacmegw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// cli runs `caddy acme-gateway <args>` against the env's admin server and
// returns what it printed.
func (e *adminEnv) cli(args ...string) (string, error) {
	e.t.Helper()
	cmd := &cobra.Command{Use: "acme-gateway", SilenceUsage: true}
	setupCommand(cmd)
	cmd.SetArgs(append(args, "--address", e.addr, "--name", e.g.h.Name, "--officer", "cli-officer"))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return out.String(), err
}

func (e *adminEnv) mustCLI(args ...string) string {
	e.t.Helper()
	out, err := e.cli(args...)
	if err != nil {
		e.t.Fatalf("acme-gateway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
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
	out = e.mustCLI("register", "--domains", "d.example", "--directory", "https://ca.corp/acme/directory")
	if !strings.Contains(out, "--server https://ca.corp/acme/directory ") {
		t.Errorf("output with --directory:\n%s", out)
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
		!strings.Contains(got.Certbot, "--eab-hmac-key="+got.HMACKey) || got.Expires == nil || got.Expires.Year() != 2099 {
		t.Fatalf("register --json: %s", out)
	}
}

func TestCommand_ListsDisableAndRevoke(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	e.mustCLI("register", "--domains", "example.com", "--key-id", "kid-cli", "--description", "two\nlines")
	mac := g.registration("kid-cli").HMACKey
	acct, accountID := g.mustAccount("kid-cli", mac)
	serial := g.issue(acct, "www.example.com").SerialNumber.Text(16)

	tests := []struct {
		name string
		args []string
		want []string // each must appear in the output
	}{
		{"registrations table", []string{"registrations"}, []string{"KEY ID", "STATUS", "kid-cli", "active", "example.com", "never", accountID, "two lines"}},
		{"accounts table", []string{"accounts", "--registration", "kid-cli"}, []string{"REGISTRATION", accountID, "valid", "kid-cli", "mailto:ops@example.com"}},
		{"certificates table", []string{"certificates", "--domain", "www.example.com"}, []string{"SERIAL", "NOT AFTER", serial, "valid", "www.example.com", accountID}},
		{"certificates filtered out", []string{"certificates", "--status", "revoked"}, []string{"SERIAL"}},
		{"disable", []string{"disable", "kid-cli"}, []string{"kid-cli is disabled", "Account " + accountID}},
		{"revoke", []string{"revoke", strings.ToUpper(serial), "--reason", "4"}, []string{serial, "revoked, reason 4 (superseded)"}},
		{"audit table", []string{"audit"}, []string{"ACTOR", "cli-officer", "registration.update", "certificate.revoke"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := e.mustCLI(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.name == "certificates filtered out" && strings.Contains(out, serial) {
				t.Errorf("filter ignored:\n%s", out)
			}
		})
	}
	if got := g.registration("kid-cli").Status; got != storage.RegistrationDisabled {
		t.Fatalf("registration %s after disable", got)
	}
	if reason, ok := g.issuer.Revocation(serial); !ok || reason != 4 {
		t.Fatalf("issuer revocation %d, %v; want 4", reason, ok)
	}
	if cert, _ := g.store.GetCertificate(context.Background(), serial); cert.Status != storage.StatusRevoked {
		t.Fatalf("certificate %s after revoke", cert.Status)
	}

	// --json prints the API's answer for scripts.
	var regs struct {
		Registrations []registrationView `json:"registrations"`
		Next          string             `json:"next"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI("registrations", "--json")), &regs); err != nil || len(regs.Registrations) != 1 || regs.Registrations[0].Status != "disabled" {
		t.Fatalf("registrations --json: %+v %v", regs, err)
	}
	var certs struct {
		Certificates []certificateView `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI("certificates", "--json", "--account", accountID)), &certs); err != nil ||
		len(certs.Certificates) != 1 || certs.Certificates[0].Status != storage.StatusRevoked {
		t.Fatalf("certificates --json: %+v %v", certs, err)
	}
	var accts struct {
		Accounts []accountView `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI("accounts", "--json", "--status", "valid")), &accts); err != nil || len(accts.Accounts) != 1 {
		t.Fatalf("accounts --json: %+v %v", accts, err)
	}
}

func TestCommand_PagesAndErrors(t *testing.T) {
	e := newAdminEnv(t)
	for _, kid := range []string{"a", "b", "c"} {
		e.mustCLI("register", "--domains", kid+".example", "--key-id", kid)
	}
	out := e.mustCLI("registrations", "--limit", "2")
	if !strings.Contains(out, "--cursor b") || strings.Contains(out, "c.example") {
		t.Fatalf("first page:\n%s", out)
	}
	out = e.mustCLI("registrations", "--limit", "2", "--cursor", "b")
	if !strings.Contains(out, "c.example") || strings.Contains(out, "--cursor") {
		t.Fatalf("second page:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"register", "--domains", "bad domain"}, "allowed_domains"},
		{[]string{"register"}, "domains"},
		{[]string{"revoke", "abc", "--reason", "2"}, "not accepted"},
		{[]string{"disable", "nope"}, "404"},
		{[]string{"disable"}, "accepts 1 arg"},
	} {
		if _, err := e.cli(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("acme-gateway %s: %v, want an error with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	cmd := &cobra.Command{Use: "acme-gateway", SilenceUsage: true}
	setupCommand(cmd)
	cmd.SetArgs([]string{"registrations", "--address", e.addr, "--name", "nope"})
	cmd.SetOut(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "no ACME gateway named") {
		t.Fatalf("unknown gateway: %v", err)
	}
}

func TestShellJoin_QuotesWhatTheShellWouldChange(t *testing.T) {
	got := shellJoin([]string{"certbot", "-d", "*.example.com", "https://<acme-host>/acme/directory", "it's", "a_b-c.d"})
	want := `certbot -d '*.example.com' 'https://<acme-host>/acme/directory' 'it'\''s' a_b-c.d`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
