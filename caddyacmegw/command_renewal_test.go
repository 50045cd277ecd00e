package caddyacmegw

import (
	"context"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// `renewal move` moves an account's windows, as its client then sees; the
// trail names the officer; `renewal rules` lists the rule.
func TestCommand_RenewalMoveAndRules(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, accountID := g.mustAccount("", nil)
	leaf := g.issue(acct, "cli.example.com")

	out := e.mustCLI("renewal", "move", "--account", accountID, "--explanation-url", "https://example.com/why")
	contains(t, "renewal move", out, "Renewal window of account:"+accountID+" moved to ", "for certificates issued until")
	info, err := g.client().GetRenewalInfo(context.Background(), leaf)
	if err != nil || info.ExplanationURL != "https://example.com/why" || info.SuggestedWindow.End.After(time.Now()) {
		t.Fatalf("renewal info after renewal move: %+v, %v", info, err)
	}

	contains(t, "renewal show", e.mustCLI("renewal", "show", opensslSerial(leaf.SerialNumber.Text(16))),
		"cert id:", "window:", "explanation:  https://example.com/why")

	var trail auditPage
	e.mustJSON(&trail, "audit")
	last := trail.Audit[len(trail.Audit)-1]
	if last.Action != "renewal.move" || last.Target != "account:"+accountID || last.Actor != "cli-officer" {
		t.Fatalf("audit entry %+v", last)
	}

	contains(t, "renewal rules", e.mustCLI("renewal", "rules", "--account", accountID),
		"RULE", "cli-officer", "https://example.com/why")
	var rules struct {
		Rules []storage.RenewalRule `json:"renewal_rules"`
	}
	e.mustJSON(&rules, "renewal", "rules", "--issuer")
	if len(rules.Rules) != 0 {
		t.Fatalf("issuer rules: %+v", rules)
	}

	e.cliFails("give exactly one of --certificate, --account, --registration or --issuer", "renewal", "move", "--issuer", "--account", accountID)
	e.cliFails(`--end "tomorrow" is not an RFC 3339 time like 2030-01-02T15:04:05Z`, "renewal", "move", "--issuer", "--end", "tomorrow")
}
