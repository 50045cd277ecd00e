package caddyacmegw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// An officer moves one certificate's renewal window into the past: ACME
// clients asking for its renewal information get the moved window and the
// explanation, other certificates keep theirs, and the audit trail says
// who moved what.
func TestAdmin_RenewalRuleMovesWindowAndIsAudited(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, _ := g.mustAccount("", nil)
	leaf := g.issue(acct, "ari.example.com")
	other := g.issue(acct, "other.example.com")
	serial := leaf.SerialNumber.Text(16)
	ctx := context.Background()
	before, err := g.client().GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	if !before.SuggestedWindow.Start.After(time.Now()) {
		t.Fatalf("a fresh certificate's window starts %s, want in the future", before.SuggestedWindow.Start)
	}

	const explanation = "https://status.example.com/incident-42"
	var rule storage.RenewalRule
	e.must(http.StatusCreated, http.MethodPost, "renewal-rules",
		map[string]any{"scope": "certificate", "value": opensslSerial(serial), "explanation_url": explanation},
		&rule, officerHeader, "alice")
	if rule.Kind != storage.RenewalScopeCertificate || rule.Value != serial || rule.CreatedBy != "alice" ||
		!rule.WindowEnd.After(rule.WindowStart) || rule.WindowEnd.After(time.Now()) {
		t.Fatalf("rule %+v", rule)
	}

	after, err := g.client().GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info after the rule: %v", err)
	}
	if after.ExplanationURL != explanation || after.SuggestedWindow.End.After(time.Now()) {
		t.Fatalf("renewal info after the rule: %+v, want a past window explained by %s", after, explanation)
	}
	if unmoved, err := g.client().GetRenewalInfo(ctx, other); err != nil || unmoved.ExplanationURL != "" || !unmoved.SuggestedWindow.Start.After(time.Now()) {
		t.Fatalf("another certificate's renewal info: %+v, %v; want its own window", unmoved, err)
	}

	var view gateway.RenewalInfo
	e.must(http.StatusOK, http.MethodGet, "certificates/"+serial+"/renewal-info", nil, &view)
	if !view.WindowEnd.Equal(after.SuggestedWindow.End) || view.ExplanationURL != explanation || view.CertID != after.UniqueIdentifier {
		t.Fatalf("officers' view of the renewal info %+v, clients' %+v", view, after)
	}

	entries := e.auditEntries()
	last := entries[len(entries)-1]
	if last.Action != "renewal.move" || last.Target != "certificate:"+serial || last.Actor != "alice" {
		t.Fatalf("audit entry %+v", last)
	}
	var detail map[string]any
	if err := json.Unmarshal(last.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if detail["rule_id"] != rule.ID || detail["explanation_url"] != explanation || detail["window_end"] != rule.WindowEnd.Format(time.RFC3339Nano) {
		t.Fatalf("audit detail %v, want the rule %+v", detail, rule)
	}

	var listed struct {
		Rules []storage.RenewalRule `json:"renewal_rules"`
	}
	e.must(http.StatusOK, http.MethodGet, "renewal-rules?scope=certificate&value="+serial, nil, &listed)
	if len(listed.Rules) != 1 || listed.Rules[0].ID != rule.ID {
		t.Fatalf("rules of the certificate: %+v", listed)
	}
}

func TestAdmin_RenewalRuleScopesAndRefusals(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	reg := e.createRegistration(map[string]any{"allowed_domains": []string{"example.com"}})
	mac, _ := base64.RawURLEncoding.DecodeString(reg.HMACKey)
	acct, accountID := g.mustAccount(reg.KeyID, mac)
	leaf := g.issue(acct, "www.example.com")
	serial := leaf.SerialNumber.Text(16)
	n := len(e.auditEntries())

	for _, body := range []map[string]any{
		{"scope": "certificate", "value": serial},
		{"scope": "account", "value": accountID},
		{"scope": "registration", "value": reg.KeyID},
		{"scope": "issuer", "window_start": "2030-01-01T00:00:00Z", "window_end": "2030-01-02T00:00:00Z"},
	} {
		e.must(http.StatusCreated, http.MethodPost, "renewal-rules", body, nil)
	}
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"unknown scope", map[string]any{"scope": "domain", "value": "www.example.com"}, http.StatusBadRequest},
		{"no value", map[string]any{"scope": "account"}, http.StatusBadRequest},
		{"issuer with a value", map[string]any{"scope": "issuer", "value": "x"}, http.StatusBadRequest},
		{"unknown certificate", map[string]any{"scope": "certificate", "value": "abcdef"}, http.StatusNotFound},
		{"unknown account", map[string]any{"scope": "account", "value": "nobody"}, http.StatusNotFound},
		{"unknown registration", map[string]any{"scope": "registration", "value": "nokid"}, http.StatusNotFound},
		{"not a serial", map[string]any{"scope": "certificate", "value": "xyz"}, http.StatusBadRequest},
		{"explanation not a URL", map[string]any{"scope": "issuer", "explanation_url": "see the wiki"}, http.StatusBadRequest},
		{"window backwards", map[string]any{"scope": "issuer", "window_start": "2030-01-02T00:00:00Z", "window_end": "2030-01-01T00:00:00Z"}, http.StatusBadRequest},
		{"unknown field", map[string]any{"scope": "issuer", "windows": 1}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status, raw := e.do(http.MethodPost, "renewal-rules", tc.body); status != tc.status {
				t.Fatalf("POST renewal-rules %v: %d %s, want %d", tc.body, status, raw, tc.status)
			}
		})
	}
	if got := len(e.auditEntries()) - n; got != 4 {
		t.Fatalf("%d audit entries for 4 rules made and %d refused", got, len(tests))
	}
}
