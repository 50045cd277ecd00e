package caddyacmegw

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalForm is the form that asks the clients of a scope's certificates
// to renew early, with the rules made for that scope already.
type renewalForm struct {
	renewalScopeNames
	Action string
	Rules  []*storage.RenewalRule
}

// renewalScopeNames name a scope on its form: Scope, short, for its rules;
// Of, the certificates whose windows the form moves.
type renewalScopeNames struct{ Scope, Of string }

var renewalScopeNamesOf = map[string]renewalScopeNames{
	storage.RenewalScopeCertificate:  {"this certificate", "this certificate"},
	storage.RenewalScopeAccount:      {"this account", "this account's certificates issued until now"},
	storage.RenewalScopeRegistration: {"this registration", "the certificates issued until now to the account made with this registration"},
	storage.RenewalScopeIssuer:       {"every certificate", "every certificate of this gateway issued until now"},
}

// renewalForm is the form that moves the windows of one scope, whose
// record the page has read, posted to the scope's page's path and
// "renewal".
func (q *consoleRequest) renewalForm(ctx context.Context, sc storage.RenewalScope, page ...string) (renewalForm, error) {
	rules, err := q.officer.rulesFor(ctx, sc)
	if err != nil {
		return renewalForm{}, err
	}
	return renewalForm{renewalScopeNames: renewalScopeNamesOf[sc.Kind], Action: q.link(nil, append(page, "renewal")...), Rules: rules}, nil
}

// moveRenewal moves the windows of one scope as the form asks.
func (q *consoleRequest) moveRenewal(r *http.Request, kind, value string) (*storage.RenewalRule, error) {
	f := r.PostForm
	body := renewalRuleRequest{Scope: kind, Value: value, ExplanationURL: strings.TrimSpace(f.Get("explanation_url"))}
	for _, w := range []struct {
		field string
		t     **time.Time
	}{{"window_start", &body.WindowStart}, {"window_end", &body.WindowEnd}} {
		s := strings.TrimSpace(f.Get(w.field))
		if s == "" {
			continue
		}
		t, err := parseConsoleTime(w.field, s)
		if err != nil {
			return nil, err
		}
		*w.t = &t
	}
	return q.officer.moveRenewalWindows(r.Context(), body)
}

// consoleScopeRenewal moves the windows of the scope a page shows, named
// by the path's value, and goes back to the page.
func consoleScopeRenewal(kind, pathValue, page string) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
		rule, err := q.moveRenewal(r, kind, r.PathValue(pathValue))
		if err != nil {
			return err
		}
		return seeOther(w, r, q.link(nil, page, rule.Value))
	}
}

// consoleConfirmIssuerRenewal asks before moving the windows of every
// certificate of the gateway, and shows the moves made so.
func consoleConfirmIssuerRenewal(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	form, err := q.renewalForm(r.Context(), storage.RenewalScope{Kind: storage.RenewalScopeIssuer})
	if err != nil {
		return err
	}
	return q.confirm(w, "Ask every client to renew early", "certificates", confirmData{
		Question: "Ask the clients of every certificate of this gateway issued until now to renew early? " +
			"Their suggested renewal windows move into the past; clients that follow ACME Renewal Information renew at their next look. " +
			"A later move supersedes this one: the latest rule wins.",
		Action:  form.Action,
		Button:  "Ask every client to renew early",
		Cancel:  q.link(nil, "certificates"),
		Renewal: &form,
	})
}

func consoleIssuerRenewal(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	if _, err := q.moveRenewal(r, storage.RenewalScopeIssuer, ""); err != nil {
		return err
	}
	return seeOther(w, r, q.link(url.Values{"action": {"renewal.move"}}, "audit"))
}
