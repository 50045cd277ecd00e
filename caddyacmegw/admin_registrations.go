package caddyacmegw

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Limits on a registration's fields.
const (
	maxDescriptionLen = 1000
	maxProcedureLen   = 200
	maxAllowedDomains = 1000
	maxEmails         = 100
	hmacKeyBytes      = 32
)

// registrationView is a registration as officers see it. HMACKey is set
// only in the answer that creates it: the key is never shown again.
type registrationView struct {
	KeyID          string     `json:"key_id"`
	HMACKey        string     `json:"hmac_key,omitempty"`
	Description    string     `json:"description"`
	AllowedDomains []string   `json:"allowed_domains"`
	Emails         []string   `json:"emails"`
	Expires        *time.Time `json:"expires"`
	Status         string     `json:"status"`
	AccountID      string     `json:"account_id,omitempty"`
	Procedure      string     `json:"procedure,omitempty"`
	Profiles       []string   `json:"profiles"` // empty: all
	CreatedAt      time.Time  `json:"created_at"`
	CreatedBy      string     `json:"created_by,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
	UpdatedBy      string     `json:"updated_by,omitempty"`
}

func viewRegistration(r *storage.Registration) registrationView {
	v := registrationView{
		KeyID:          r.KeyID,
		Description:    r.Description,
		AllowedDomains: r.AllowedDomains,
		Emails:         r.Emails,
		Status:         r.Status,
		AccountID:      r.AccountID,
		Procedure:      r.Procedure,
		Profiles:       viewProfiles(r.Profiles),
		CreatedAt:      r.CreatedAt,
		CreatedBy:      r.CreatedBy,
		UpdatedAt:      r.UpdatedAt,
		UpdatedBy:      r.UpdatedBy,
	}
	if v.AllowedDomains == nil {
		v.AllowedDomains = []string{}
	}
	if v.Emails == nil {
		v.Emails = []string{}
	}
	if !r.Expires.IsZero() {
		t := r.Expires
		v.Expires = &t
	}
	return v
}

// createRegistrationRequest is the body of POST registrations.
type createRegistrationRequest struct {
	KeyID          string   `json:"key_id"`
	Description    string   `json:"description"`
	AllowedDomains []string `json:"allowed_domains"`
	// Emails are the addresses add_account_contact_email may put into the
	// account's certificates: its contact must be one of them.
	Emails []string `json:"emails"`
	// Expires is an RFC 3339 time; ExpiresIn a duration from now ("720h",
	// "30d"). At most one of them.
	Expires   string `json:"expires"`
	ExpiresIn string `json:"expires_in"`
	Procedure string `json:"procedure"`
	// Profiles are the only profiles the account may order under; empty:
	// all of the gateway's.
	Profiles []string `json:"profiles"`
}

func (q *adminRequest) createRegistration() error {
	var body createRegistrationRequest
	if err := readJSON(q.w, q.r, &body); err != nil {
		return err
	}
	v, err := q.officer().createRegistration(q.r.Context(), body)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusCreated, v)
}

func (q *adminRequest) listRegistrations() error {
	_, p, err := q.query()
	if err != nil {
		return err
	}
	out, err := q.officer().listRegistrations(q.r.Context(), "", p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (q *adminRequest) getRegistration(kid string) error {
	v, err := q.officer().getRegistration(q.r.Context(), kid)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}

// parseRegistrationPatch reads a PATCH body. A JSON object rather than a
// struct, so that "expires": null (clear it) differs from no "expires".
// The officer checks the values.
func (q *adminRequest) parseRegistrationPatch() (*registrationPatch, error) {
	var raw map[string]json.RawMessage
	if err := readJSON(q.w, q.r, &raw); err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, apiError(http.StatusBadRequest, "nothing to change; send allowed_domains, emails, description, expires, expires_in, status, procedure or profiles")
	}
	p := &registrationPatch{}
	str := func(key string) (*string, error) {
		var s *string
		if err := json.Unmarshal(raw[key], &s); err != nil {
			return nil, apiError(http.StatusBadRequest, "%s must be a string", key)
		}
		if s == nil {
			s = new(string) // null clears
		}
		return s, nil
	}
	list := func(val json.RawMessage, msg string) (*[]string, error) {
		var l []string
		if json.Unmarshal(val, &l) != nil {
			return nil, apiError(http.StatusBadRequest, "%s", msg)
		}
		return &l, nil
	}
	_, hasExpires := raw["expires"]
	_, hasExpiresIn := raw["expires_in"]
	if hasExpires && hasExpiresIn {
		return nil, apiError(http.StatusBadRequest, "give expires or expires_in, not both")
	}
	for key, val := range raw {
		var err error
		switch key {
		case "description":
			p.description, err = str(key)
		case "procedure":
			p.procedure, err = str(key)
		case "allowed_domains":
			p.allowedDomains, err = list(val, "allowed_domains must be a list of names")
		case "emails":
			p.emails, err = list(val, "emails must be a list of e-mail addresses")
		case "profiles":
			p.profiles, err = list(val, "profiles must be a list of profile names")
		case "expires", "expires_in":
			var s *string
			if json.Unmarshal(val, &s) != nil {
				return nil, apiError(http.StatusBadRequest, "%s must be a string or null", key)
			}
			switch {
			case s == nil:
				s = new(string) // null clears
			case *s == "":
				return nil, apiError(http.StatusBadRequest, "%s is empty; send null to clear it", key)
			}
			if key == "expires" {
				p.expires = s
			} else {
				p.expiresIn = s
			}
		case "status":
			var s string
			if json.Unmarshal(val, &s) != nil {
				return nil, apiError(http.StatusBadRequest, "status must be %q or %q", storage.RegistrationActive, storage.RegistrationDisabled)
			}
			p.status = &s
		default:
			return nil, apiError(http.StatusBadRequest, "unknown field %q; changeable are allowed_domains, emails, description, expires, expires_in, status, procedure, profiles", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// apply changes reg and returns what changed, old and new, for the audit.
func (p *registrationChange) apply(reg *storage.Registration) map[string]any {
	changes := map[string]any{}
	change := func(key string, from, to any) { changes[key] = map[string]any{"from": from, "to": to} }
	if p.description != nil && *p.description != reg.Description {
		change("description", reg.Description, *p.description)
		reg.Description = *p.description
	}
	if p.procedure != nil && *p.procedure != reg.Procedure {
		change("procedure", reg.Procedure, *p.procedure)
		reg.Procedure = *p.procedure
	}
	if p.allowedDomains != nil && !slices.Equal(*p.allowedDomains, reg.AllowedDomains) {
		change("allowed_domains", reg.AllowedDomains, *p.allowedDomains)
		reg.AllowedDomains = *p.allowedDomains
	}
	if p.emails != nil && !slices.Equal(*p.emails, reg.Emails) {
		change("emails", reg.Emails, *p.emails)
		reg.Emails = *p.emails
	}
	if p.profiles != nil && !slices.Equal(*p.profiles, reg.Profiles) {
		change("profiles", viewProfiles(reg.Profiles), viewProfiles(*p.profiles))
		reg.Profiles = *p.profiles
	}
	if p.expires != nil && !p.expires.Equal(reg.Expires) {
		change("expires", timeOrNil(reg.Expires), timeOrNil(*p.expires))
		reg.Expires = *p.expires
	}
	if p.status != nil && *p.status != reg.Status {
		change("status", reg.Status, *p.status)
		reg.Status = *p.status
	}
	return changes
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (q *adminRequest) patchRegistration(kid string) error {
	p, err := q.parseRegistrationPatch()
	if err != nil {
		return err
	}
	v, err := q.officer().updateRegistration(q.r.Context(), kid, p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}

func (q *adminRequest) deleteRegistration(kid string) error {
	if err := q.officer().deleteRegistration(q.r.Context(), kid); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkKeyID accepts a key id an officer chose: base64url characters,
// since clients send it in a JWS header and it appears in admin URLs.
func checkKeyID(kid string) error {
	if !storage.ValidKeyID(kid) || strings.HasPrefix(kid, "-") {
		return apiError(http.StatusBadRequest, "key_id must be 1 to 64 letters, digits, '-' or '_', not starting with '-'")
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return apiError(http.StatusBadRequest, "%s is longer than %d bytes", field, max)
	}
	return nil
}

// normalizeAllowedDomains normalizes each entry as the gateway's policy
// does, drops duplicates and keeps them sorted, or refuses the first bad one.
func normalizeAllowedDomains(in []string) ([]string, error) {
	if len(in) > maxAllowedDomains {
		return nil, apiError(http.StatusBadRequest, "at most %d allowed_domains", maxAllowedDomains)
	}
	var out []string
	for _, d := range in {
		n, err := gateway.NormalizeDomainEntry(d)
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "allowed_domains: %v", err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeEmails drops duplicates and keeps them sorted, or refuses the
// first address that would not pass as an account contact.
func normalizeEmails(in []string) ([]string, error) {
	if len(in) > maxEmails {
		return nil, apiError(http.StatusBadRequest, "at most %d emails", maxEmails)
	}
	for _, addr := range in {
		if err := gateway.PlausibleEmail(addr); err != nil {
			return nil, apiError(http.StatusBadRequest, "emails: %q: %v", addr, err)
		}
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseExpiry reads an expiry given as a time or as a duration from now;
// neither is the zero time (never expires).
func parseExpiry(at, in string, now time.Time) (time.Time, error) {
	switch {
	case at != "" && in != "":
		return time.Time{}, apiError(http.StatusBadRequest, "give expires or expires_in, not both")
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, apiError(http.StatusBadRequest, "expires must be an RFC 3339 time like 2030-01-02T15:04:05Z")
		}
		if !t.After(now) {
			return time.Time{}, apiError(http.StatusBadRequest, "expires %s is not in the future", at)
		}
		return t.UTC(), nil
	case in != "":
		d, err := caddy.ParseDuration(in)
		if err != nil || d <= 0 {
			return time.Time{}, apiError(http.StatusBadRequest, "expires_in must be a positive duration like \"720h\" or \"30d\"")
		}
		return now.Add(d).Truncate(time.Second), nil
	}
	return time.Time{}, nil
}
