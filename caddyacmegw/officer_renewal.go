package caddyacmegw

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalScopes are the scopes an officer may move renewal windows of.
var renewalScopes = []string{storage.RenewalScopeCertificate, storage.RenewalScopeAccount,
	storage.RenewalScopeRegistration, storage.RenewalScopeIssuer}

// defaultMovedWindow is how long before the rule's time a window moved
// without one given starts; it ends when the rule is made, so that
// clients renew at their next look.
const defaultMovedWindow = time.Hour

// maxExplanationURL bounds an explanation URL.
const maxExplanationURL = 2000

// renewalRuleRequest is what an officer sends to move renewal windows.
type renewalRuleRequest struct {
	Scope string `json:"scope"`
	// Value names the certificate (serial), account (id) or registration
	// (key id); empty for the issuer scope.
	Value string `json:"value"`
	// WindowStart and WindowEnd default to an hour before now, and now.
	WindowStart    *time.Time `json:"window_start"`
	WindowEnd      *time.Time `json:"window_end"`
	ExplanationURL string     `json:"explanation_url"`
}

// moveRenewalWindows stores a rule that moves the suggested renewal
// windows of the certificates of a scope issued until now, and audits it.
func (o *officer) moveRenewalWindows(ctx context.Context, body renewalRuleRequest) (*storage.RenewalRule, error) {
	ctx = context.WithoutCancel(ctx)
	if err := checkExplanationURL(body.ExplanationURL); err != nil {
		return nil, err
	}
	now := o.h.now().UTC()
	rule := &storage.RenewalRule{
		ID:             gateway.NewID(),
		WindowStart:    now.Add(-defaultMovedWindow),
		WindowEnd:      now,
		ExplanationURL: body.ExplanationURL,
		CreatedAt:      now,
		CreatedBy:      o.actor,
	}
	if body.WindowStart != nil {
		rule.WindowStart = body.WindowStart.UTC()
	}
	if body.WindowEnd != nil {
		rule.WindowEnd = body.WindowEnd.UTC()
	}
	if !rule.WindowStart.Before(rule.WindowEnd) {
		return nil, apiError(http.StatusBadRequest, "window_start must be before window_end")
	}
	// Last of the checks: it reads the scope's record.
	sc, err := o.renewalScope(ctx, body.Scope, body.Value)
	if err != nil {
		return nil, err
	}
	rule.RenewalScope = sc
	if err := o.h.store.CreateRenewalRule(ctx, rule); err != nil {
		return nil, storeError(err, "renewal rule")
	}
	o.audit(ctx, "renewal.move", renewalTarget(sc), map[string]any{
		"rule_id":         rule.ID,
		"scope":           sc.Kind,
		"value":           sc.Value,
		"window_start":    rule.WindowStart,
		"window_end":      rule.WindowEnd,
		"explanation_url": rule.ExplanationURL,
	})
	return rule, nil
}

// renewalRules are the rules made for one scope, oldest first.
func (o *officer) renewalRules(ctx context.Context, kind, value string) ([]*storage.RenewalRule, error) {
	sc, err := o.renewalScope(ctx, kind, value)
	if err != nil {
		return nil, err
	}
	return o.rulesFor(ctx, sc)
}

// rulesFor is renewalRules for a scope already checked.
func (o *officer) rulesFor(ctx context.Context, sc storage.RenewalScope) ([]*storage.RenewalRule, error) {
	rules, err := o.h.store.RenewalRulesFor(ctx, []storage.RenewalScope{sc})
	if err != nil {
		return nil, storeError(err, "renewal rules")
	}
	slices.SortFunc(rules, func(a, b *storage.RenewalRule) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return rules, nil
}

// renewalInfo is a certificate's renewal information as clients get it
// now.
func (o *officer) renewalInfo(ctx context.Context, serial string) (gateway.RenewalInfo, error) {
	c, err := o.certificate(ctx, serial)
	if err != nil {
		return gateway.RenewalInfo{}, err
	}
	return o.renewalInfoOf(ctx, c)
}

// renewalInfoOf is renewalInfo for a certificate already read.
func (o *officer) renewalInfoOf(ctx context.Context, c *storage.Certificate) (gateway.RenewalInfo, error) {
	info, err := o.h.gw.RenewalInfoOf(ctx, c)
	if err != nil {
		return gateway.RenewalInfo{}, storeError(err, "renewal information of "+c.Serial)
	}
	return info, nil
}

// renewalScope checks a scope and its value, which must name a record the
// gateway keeps: a rule for a typo would move nothing.
func (o *officer) renewalScope(ctx context.Context, kind, value string) (storage.RenewalScope, error) {
	sc := storage.RenewalScope{Kind: kind, Value: value}
	switch {
	case !slices.Contains(renewalScopes, kind):
		return sc, apiError(http.StatusBadRequest, "scope %q is none of %s", kind, strings.Join(renewalScopes, ", "))
	case kind == storage.RenewalScopeIssuer && value != "":
		return sc, apiError(http.StatusBadRequest, "the issuer scope takes no value: it is every certificate of this gateway")
	case kind == storage.RenewalScopeIssuer:
		return sc, nil
	case value == "":
		return sc, apiError(http.StatusBadRequest, "the %s scope needs a value", kind)
	}
	var err error
	switch kind {
	case storage.RenewalScopeCertificate:
		if sc.Value, err = normalizeSerial(value); err != nil {
			return sc, err
		}
		_, err = o.h.store.GetCertificate(ctx, sc.Value)
	case storage.RenewalScopeAccount:
		_, err = o.h.store.GetAccount(ctx, value)
	case storage.RenewalScopeRegistration:
		_, err = o.h.store.GetRegistration(ctx, value)
	}
	if err != nil {
		return sc, storeError(err, kind+" "+value)
	}
	return sc, nil
}

func checkExplanationURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > maxExplanationURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return apiError(http.StatusBadRequest, "explanation_url must be an http or https URL of at most %d characters", maxExplanationURL)
	}
	return nil
}

// renewalTarget names a scope in the audit trail: "account:<id>", or
// "issuer" for every certificate.
func renewalTarget(sc storage.RenewalScope) string {
	if sc.Value == "" {
		return sc.Kind
	}
	return sc.Kind + ":" + sc.Value
}
