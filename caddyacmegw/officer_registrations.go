package caddyacmegw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// createRegistration checks and stores a new registration. The answer is
// the only one to hold its HMAC key: it is never shown again.
func (o *officer) createRegistration(ctx context.Context, body createRegistrationRequest) (registrationView, error) {
	now := o.h.now().UTC()
	reg := &storage.Registration{
		KeyID:       body.KeyID,
		Description: body.Description,
		Procedure:   body.Procedure,
		Status:      storage.RegistrationActive,
		CreatedAt:   now,
		CreatedBy:   o.actor,
		UpdatedAt:   now,
	}
	if reg.KeyID == "" {
		reg.KeyID = gateway.NewID()
	} else if err := checkKeyID(reg.KeyID); err != nil {
		return registrationView{}, err
	}
	if err := checkText("description", reg.Description, maxDescriptionLen); err != nil {
		return registrationView{}, err
	}
	if err := o.checkProcedure(reg.Procedure); err != nil {
		return registrationView{}, err
	}
	domains, err := normalizeAllowedDomains(body.AllowedDomains)
	if err != nil {
		return registrationView{}, err
	}
	reg.AllowedDomains = domains
	if reg.Emails, err = normalizeEmails(body.Emails); err != nil {
		return registrationView{}, err
	}
	if reg.Profiles, err = o.checkProfiles(body.Profiles); err != nil {
		return registrationView{}, err
	}
	if reg.Expires, err = parseExpiry(body.Expires, body.ExpiresIn, now); err != nil {
		return registrationView{}, err
	}
	key := make([]byte, hmacKeyBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	reg.HMACKey = key

	ctx = context.WithoutCancel(ctx)
	if err := o.h.store.CreateRegistration(ctx, reg); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return registrationView{}, apiError(http.StatusConflict, "a registration with key id %q exists", reg.KeyID)
		}
		return registrationView{}, storeError(err, "registration")
	}
	v := viewRegistration(reg)
	o.audit(ctx, "registration.create", reg.KeyID, map[string]any{
		"description":     v.Description,
		"allowed_domains": v.AllowedDomains,
		"emails":          v.Emails,
		"expires":         v.Expires,
		"procedure":       v.Procedure,
		"profiles":        v.Profiles,
		"status":          v.Status,
	})
	v.HMACKey = base64.RawURLEncoding.EncodeToString(key)
	return v, nil
}

// listRegistrations pages through the registrations; a search keeps those
// whose key id, description, account, procedure or allowed domains hold
// it, in any case. Storage lists them unfiltered, so a search is applied
// to the pages it reads, as listAudit does.
func (o *officer) listRegistrations(ctx context.Context, search string, p page) (registrationsPage, error) {
	search = strings.ToLower(search)
	out := registrationsPage{Registrations: []registrationView{}}
	next, err := scanFiltered(p.cursor, search != "", func(cursor string) (string, bool, error) {
		regs, next, err := o.h.store.ListRegistrations(ctx, cursor, p.limit-len(out.Registrations))
		if err != nil {
			return "", false, storeError(err, "registrations")
		}
		for _, r := range regs {
			if search == "" || registrationMatches(r, search) {
				out.Registrations = append(out.Registrations, viewRegistration(r))
			}
		}
		return next, len(out.Registrations) == p.limit, nil
	})
	if err != nil {
		return registrationsPage{}, err
	}
	out.Next = next
	return out, nil
}

// registrationMatches reports whether a lower-case search is in reg.
func registrationMatches(reg *storage.Registration, search string) bool {
	hay := strings.ToLower(strings.Join(append([]string{reg.KeyID, reg.Description, reg.AccountID, reg.Procedure}, reg.AllowedDomains...), "\n"))
	return strings.Contains(hay, search)
}

func (o *officer) getRegistration(ctx context.Context, kid string) (registrationView, error) {
	reg, err := o.h.store.GetRegistration(ctx, kid)
	if err != nil {
		return registrationView{}, storeError(err, "registration "+kid)
	}
	return viewRegistration(reg), nil
}

// registrationPatch is a change to a registration as the admin API or the
// console gives it, unchecked: nil fields stay as they are. At most one of
// expires (an RFC 3339 time) and expiresIn (a duration from now) is set;
// "" in it clears the expiry.
type registrationPatch struct {
	description    *string
	procedure      *string
	allowedDomains *[]string
	emails         *[]string
	profiles       *[]string
	expires        *string
	expiresIn      *string
	status         *string
}

// registrationChange is a checked registrationPatch.
type registrationChange struct {
	description    *string
	procedure      *string
	allowedDomains *[]string
	emails         *[]string
	profiles       *[]string
	expires        *time.Time // zero time clears
	status         *string
}

// checkPatch checks and normalises a patch as createRegistration does a
// new registration.
func (o *officer) checkPatch(p *registrationPatch) (*registrationChange, error) {
	c := &registrationChange{description: p.description, procedure: p.procedure, status: p.status}
	if p.description != nil {
		if err := checkText("description", *p.description, maxDescriptionLen); err != nil {
			return nil, err
		}
	}
	if p.procedure != nil {
		if err := o.checkProcedure(*p.procedure); err != nil {
			return nil, err
		}
	}
	if p.allowedDomains != nil {
		list, err := normalizeAllowedDomains(*p.allowedDomains)
		if err != nil {
			return nil, err
		}
		c.allowedDomains = &list
	}
	if p.emails != nil {
		list, err := normalizeEmails(*p.emails)
		if err != nil {
			return nil, err
		}
		c.emails = &list
	}
	if p.profiles != nil {
		list, err := o.checkProfiles(*p.profiles)
		if err != nil {
			return nil, err
		}
		c.profiles = &list
	}
	if p.expires != nil || p.expiresIn != nil {
		var at, in string
		if p.expires != nil {
			at = *p.expires
		}
		if p.expiresIn != nil {
			in = *p.expiresIn
		}
		t, err := parseExpiry(at, in, o.h.now().UTC())
		if err != nil {
			return nil, err
		}
		c.expires = &t
	}
	if p.status != nil && *p.status != storage.RegistrationActive && *p.status != storage.RegistrationDisabled {
		return nil, apiError(http.StatusBadRequest, "status must be %q or %q", storage.RegistrationActive, storage.RegistrationDisabled)
	}
	return c, nil
}

// updateRegistration checks a patch and applies it; a patch that changes
// nothing writes nothing and leaves no audit entry.
func (o *officer) updateRegistration(ctx context.Context, kid string, patch *registrationPatch) (registrationView, error) {
	p, err := o.checkPatch(patch)
	if err != nil {
		return registrationView{}, err
	}
	ctx = context.WithoutCancel(ctx)
	var reg *storage.Registration
	var changes map[string]any
	err = retryConflict(func() error {
		var err error
		if reg, err = o.h.store.GetRegistration(ctx, kid); err != nil {
			return err
		}
		if changes = p.apply(reg); len(changes) == 0 {
			return nil
		}
		reg.UpdatedAt = o.h.now().UTC()
		reg.UpdatedBy = o.actor
		return o.h.store.UpdateRegistration(ctx, reg)
	})
	if err != nil {
		return registrationView{}, storeError(err, "registration "+kid)
	}
	if len(changes) > 0 {
		o.audit(ctx, "registration.update", kid, map[string]any{"changes": changes})
	}
	return viewRegistration(reg), nil
}

// deleteRegistration removes a registration; the account bound to it stays.
func (o *officer) deleteRegistration(ctx context.Context, kid string) error {
	ctx = context.WithoutCancel(ctx)
	reg, err := o.h.store.GetRegistration(ctx, kid)
	if err != nil {
		return storeError(err, "registration "+kid)
	}
	if err := o.h.store.DeleteRegistration(ctx, kid); err != nil {
		return storeError(err, "registration "+kid)
	}
	o.audit(ctx, "registration.delete", kid, map[string]any{
		"account_id":      reg.AccountID,
		"allowed_domains": viewRegistration(reg).AllowedDomains,
		"status":          reg.Status,
	})
	return nil
}

// checkProcedure refuses a procedure that the gateway's issuer does not
// know, so that a registration never names one that fails at issuance.
func (o *officer) checkProcedure(name string) error {
	if name == "" {
		return nil
	}
	if err := checkText("procedure", name, maxProcedureLen); err != nil {
		return err
	}
	pi, ok := o.h.issuer.(procedureIssuer)
	if !ok {
		return apiError(http.StatusBadRequest, "procedure %q: this gateway's issuer has no procedures to choose from", name)
	}
	if known := pi.ProcedureNames(); !slices.Contains(known, name) {
		return apiError(http.StatusBadRequest, "procedure %q is not one of the issuer's: %s", name, strings.Join(known, ", "))
	}
	return nil
}

// maxRegistrationProfiles bounds a registration's list of profiles.
const maxRegistrationProfiles = 100

// checkProfiles refuses profile names the gateway does not have, so that
// a registration never allows one that no order can name, and returns the
// list without repeats (nil for none: all profiles).
func (o *officer) checkProfiles(names []string) ([]string, error) {
	if len(names) > maxRegistrationProfiles {
		return nil, apiError(http.StatusBadRequest, "profiles: at most %d", maxRegistrationProfiles)
	}
	known := o.h.profileNames()
	var out []string
	for _, name := range names {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return nil, apiError(http.StatusBadRequest, "profile %q: this gateway has no profiles", name)
			}
			return nil, apiError(http.StatusBadRequest, "profile %q is not one of the gateway's: %s", name, strings.Join(known, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}
