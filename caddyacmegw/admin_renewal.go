package caddyacmegw

import (
	"net/http"
)

// createRenewalRule moves the suggested renewal windows (RFC 9773) of the
// certificates of a scope issued until now, and answers the rule.
func (q *adminRequest) createRenewalRule() error {
	var body renewalRuleRequest
	if err := readJSON(q.w, q.r, &body); err != nil {
		return err
	}
	rule, err := q.officer().moveRenewalWindows(q.r.Context(), body)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusCreated, rule)
}

// listRenewalRules answers the rules of one scope (?scope=&value=), all
// of them: a scope has the few an officer made, so the list is not paged.
func (q *adminRequest) listRenewalRules() error {
	v, _, err := q.query("scope", "value")
	if err != nil {
		return err
	}
	if v.Has("cursor") || v.Has("limit") {
		return apiError(http.StatusBadRequest, "renewal rules are listed whole: cursor and limit do not apply")
	}
	rules, err := q.officer().renewalRules(q.r.Context(), v.Get("scope"), v.Get("value"))
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, map[string]any{"renewal_rules": rules})
}

// getRenewalInfo answers a certificate's renewal information as clients
// get it now: its certID and window, moved or not.
func (q *adminRequest) getRenewalInfo(serial string) error {
	info, err := q.officer().renewalInfo(q.r.Context(), serial)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, info)
}
