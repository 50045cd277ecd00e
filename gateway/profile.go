package gateway

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Profile is a certificate profile a client may order under
// (draft-ietf-acme-profiles): a name the directory offers, and what
// issuance under it changes.
type Profile struct {
	// Name is what a client sends in newOrder's "profile"; Description
	// is shown beside it in the directory's meta.profiles.
	Name, Description string
	// Lifetime is the validity of its certificates and the longest an
	// order may ask for. Zero: the issuer's.
	Lifetime time.Duration
	// KeyUsage and ExtKeyUsage are the usages of its certificates, for
	// issuers that sign themselves. Zero: LeafTemplate's.
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	// Procedure, when set, is the issuer's procedure its certificates are
	// issued through; it wins over the account's registration's.
	Procedure string
}

// CheckProfiles refuses profiles without a name or with one twice, and a
// default that is not one of them. New checks its Config with it; a
// configuration can be checked before anything is opened.
func CheckProfiles(profiles []Profile, def string) error {
	for i, p := range profiles {
		if p.Name == "" {
			return errors.New("gateway: a profile needs a name")
		}
		if slices.ContainsFunc(profiles[:i], func(o Profile) bool { return o.Name == p.Name }) {
			return fmt.Errorf("gateway: profile %q given twice", p.Name)
		}
	}
	if def != "" && !slices.ContainsFunc(profiles, func(p Profile) bool { return p.Name == def }) {
		return fmt.Errorf("gateway: default profile %q is not one of the profiles", def)
	}
	return nil
}

// profile returns the configured profile of name.
func (h *Server) profile(name string) (Profile, bool) {
	i := slices.IndexFunc(h.cfg.Profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, false
	}
	return h.cfg.Profiles[i], true
}

// profileNames are the names of the configured profiles, in their order.
func (h *Server) profileNames() []string {
	names := make([]string, len(h.cfg.Profiles))
	for i, p := range h.cfg.Profiles {
		names[i] = p.Name
	}
	return names
}

// directoryProfiles is the directory's meta.profiles: name to
// description; nil when no profile is configured.
func (h *Server) directoryProfiles() map[string]string {
	if len(h.cfg.Profiles) == 0 {
		return nil
	}
	m := make(map[string]string, len(h.cfg.Profiles))
	for _, p := range h.cfg.Profiles {
		m[p.Name] = p.Description
	}
	return m
}

// orderProfile is the profile a new order is placed under: the one it
// asks for, or when it asks for none the default profile, or, when the
// account's registration does not allow that one, the first profile the
// registration allows. A profile the gateway does not have, or that the
// registration does not allow, is invalidProfile.
func (h *Server) orderProfile(requested string, reg *storage.Registration) (string, error) {
	if len(h.cfg.Profiles) == 0 {
		if requested != "" {
			return "", problem(ProblemInvalidProfile, "this server offers no profiles; leave profile out")
		}
		return "", nil
	}
	if requested == "" {
		if profileAllowed(reg, h.cfg.DefaultProfile) {
			return h.cfg.DefaultProfile, nil
		}
		for _, name := range reg.Profiles {
			if _, ok := h.profile(name); ok {
				return name, nil
			}
		}
		return "", problem(ProblemInvalidProfile, "the account's registration allows none of this server's profiles")
	}
	if _, ok := h.profile(requested); !ok {
		return "", problem(ProblemInvalidProfile, "profile %q is not offered; offered are %s", requested, strings.Join(h.profileNames(), ", "))
	}
	if !profileAllowed(reg, requested) {
		return "", problem(ProblemInvalidProfile, "the account's registration does not allow profile %q; it allows %s", requested, strings.Join(reg.Profiles, ", "))
	}
	return requested, nil
}

// profileAllowed reports whether the registration, if any, lets its
// account use profile name.
func profileAllowed(reg *storage.Registration, name string) bool {
	return reg == nil || len(reg.Profiles) == 0 || slices.Contains(reg.Profiles, name)
}

// checkOrderProfile asks again, before an order is issued, whether its
// profile is still offered and still allowed to the account. An order
// placed without one, before the gateway offered profiles, is refused
// once it offers them, as one whose profile was removed is: it would be
// issued under none of them, past the registration's restriction.
func (h *Server) checkOrderProfile(o *storage.Order, reg *storage.Registration) error {
	if o.Profile == "" {
		if len(h.cfg.Profiles) > 0 {
			return problem(ProblemInvalidProfile, "the order was placed without a profile, and this server now issues under profiles only; place a new order")
		}
		return nil
	}
	if _, ok := h.profile(o.Profile); !ok {
		return problem(ProblemInvalidProfile, "the order's profile %q is no longer offered; place a new order", o.Profile)
	}
	if !profileAllowed(reg, o.Profile) {
		return problem(ProblemInvalidProfile, "the account's registration no longer allows profile %q", o.Profile)
	}
	return nil
}

// maxLifetime is the longest validity an order under profile may ask
// for: the profile's lifetime, or else the issuer's.
func (h *Server) maxLifetime(profile string) time.Duration {
	if p, ok := h.profile(profile); ok && p.Lifetime != 0 && h.issuer.MaxLifetime() != 0 {
		return p.Lifetime
	}
	return h.issuer.MaxLifetime()
}

// addProfile adds the order's profile and its settings to an issue
// request, after addAccountDetails: a profile that names a procedure wins
// over the registration's, one that names none leaves it.
func (h *Server) addProfile(req *IssueRequest, o *storage.Order) {
	p, ok := h.profile(o.Profile)
	if !ok {
		return
	}
	req.Profile = p.Name
	req.Lifetime = p.Lifetime
	req.KeyUsage = p.KeyUsage
	req.ExtKeyUsage = p.ExtKeyUsage
	if p.Procedure != "" {
		req.Procedure = p.Procedure
	}
}

// metricsProfile is the profile label of an order's metrics: a configured
// profile's name, or "" (none, or one no longer configured).
func (h *Server) metricsProfile(name string) string {
	if _, ok := h.profile(name); ok {
		return name
	}
	return ""
}
