package caddyacmegw

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// The handler's configuration: its defaults, and the checks that refuse
// what cannot work.

func (h *Handler) setDefaults() {
	if h.Name == "" {
		h.Name = "default"
	}
	if h.PathPrefix == "" {
		h.PathPrefix = "/acme"
	}
	h.PathPrefix = "/" + strings.Trim(h.PathPrefix, "/")
	if h.PathPrefix == "/" {
		h.PathPrefix = "" // served at the root: /directory, /new-order, ...
	}
	h.BaseURL = strings.TrimSuffix(h.BaseURL, "/")
	if len(h.Challenges) == 0 {
		h.Challenges = []string{gateway.ChallengeHTTP01, gateway.ChallengeDNS01}
	}
	if h.HTTPPort == 0 {
		h.HTTPPort = 80
	}
	if h.OrderLifetime == 0 {
		h.OrderLifetime = caddy.Duration(time.Hour)
	}
	if h.AuthzLifetime == 0 {
		h.AuthzLifetime = caddy.Duration(24 * time.Hour)
	}
	if h.NonceLifetime == 0 {
		h.NonceLifetime = caddy.Duration(30 * time.Minute)
	}
	if h.ValidationTimeout == 0 {
		h.ValidationTimeout = caddy.Duration(30 * time.Second)
	}
	if h.MaxValidations == 0 {
		h.MaxValidations = 64
	}
	if h.RegistrationMode == "" {
		h.RegistrationMode = gateway.RegistrationOpen
	}
	if h.AllowWildcardNames == nil {
		yes := true
		h.AllowWildcardNames = &yes
	}
	if h.MaxIdentifiers == 0 {
		h.MaxIdentifiers = 100
	}
	if h.MaxValidationsPerAccount == 0 {
		h.MaxValidationsPerAccount = 16
	}
	if h.ValidationAttempts == 0 {
		h.ValidationAttempts = 1
	}
	if h.TLSALPNPort == 0 {
		h.TLSALPNPort = 443
	}
	if len(h.DenyValidationTo) == 0 {
		h.DenyValidationTo = slices.Clone(defaultDenyValidationTo)
	}
}

// defaultDenyValidationTo are the networks validation never connects to
// unless configured otherwise.
var defaultDenyValidationTo = []string{
	"127.0.0.0/8", "::1/128", // loopback
	"169.254.0.0/16", "fe80::/10", // link-local, cloud metadata
	"224.0.0.0/4", "ff00::/8", // multicast
	"0.0.0.0/32", "::/128", // unspecified
	"fd00:ec2::254/128", "100.100.100.200/32", // cloud metadata outside link-local (AWS IPv6, Alibaba)
}

// parsePrefixes parses CIDRs; ["none"] is the empty list.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	if len(list) == 1 && list[0] == "none" {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkEmptyLists refuses the lists whose absence means a default when
// they are given empty ([] in JSON), since an empty list would read as
// "none" and silently be the default.
func (h *Handler) checkEmptyLists() error {
	for _, l := range []struct {
		name, instead string
		list          []string
	}{
		{"challenges", "leave it out for http-01 and dns-01", h.Challenges},
		{"resolvers", "leave it out for the system's resolvers", h.Resolvers},
		{"deny_validation_to", `leave it out for the default (loopback, link-local, multicast, unspecified), or give ["none"] to deny no network`, h.DenyValidationTo},
	} {
		if l.list != nil && len(l.list) == 0 {
			return fmt.Errorf("%s is empty: %s", l.name, l.instead)
		}
	}
	return nil
}

// checkLimits refuses negative durations and counts, which would make every
// order or nonce born expired, or the validation pool impossible.
func (h *Handler) checkLimits() error {
	for name, d := range map[string]caddy.Duration{
		"order_lifetime": h.OrderLifetime, "authz_lifetime": h.AuthzLifetime,
		"nonce_lifetime": h.NonceLifetime, "validation_timeout": h.ValidationTimeout,
		"renewal_info_retry_after": h.RenewalInfoRetryAfter,
	} {
		if d < 0 {
			return fmt.Errorf("%s must be positive, not %s", name, time.Duration(d))
		}
	}
	if h.MaxValidations < 0 {
		return fmt.Errorf("max_validations must be positive, not %d", h.MaxValidations)
	}
	if h.MaxIdentifiers < 0 || h.MaxValidationsPerAccount < 0 || h.ValidationAttempts < 0 {
		return fmt.Errorf("max_identifiers, max_validations_per_account and validation_attempts must be positive")
	}
	if h.ValidationAttempts > 5 {
		return fmt.Errorf("validation_attempts %d: at most 5", h.ValidationAttempts)
	}
	return h.Limits.check()
}

// validate checks the configuration, with its defaults set. Provision
// calls it, before anything is opened; the handler is no caddy.Validator,
// which Caddy would call after Provision to check it all again.
func (h *Handler) validate() error {
	if err := h.checkLimits(); err != nil {
		return err
	}
	for i, c := range h.Challenges {
		if c != gateway.ChallengeHTTP01 && c != gateway.ChallengeDNS01 && c != gateway.ChallengeTLSALPN01 {
			return fmt.Errorf("unsupported challenge type %q", c)
		}
		if slices.Contains(h.Challenges[:i], c) {
			return fmt.Errorf("challenge type %q listed twice", c)
		}
	}
	if h.HTTPPort < 1 || h.HTTPPort > 65535 {
		return fmt.Errorf("http_port %d out of range", h.HTTPPort)
	}
	if h.TLSALPNPort < 1 || h.TLSALPNPort > 65535 {
		return fmt.Errorf("tls_alpn_port %d out of range", h.TLSALPNPort)
	}
	var err error
	if h.denyValidationTo, err = parsePrefixes(h.DenyValidationTo); err != nil {
		return fmt.Errorf("deny_validation_to: %w", err)
	}
	if h.allowIP, err = parsePrefixes(h.AllowIP); err != nil {
		return fmt.Errorf("allow_ip: %w", err)
	}
	if h.BaseURL != "" && !strings.HasPrefix(h.BaseURL, "https://") && !strings.HasPrefix(h.BaseURL, "http://") {
		return fmt.Errorf("base_url %q must be an absolute http(s) URL", h.BaseURL)
	}
	if h.RegistrationMode != gateway.RegistrationOpen && h.RegistrationMode != gateway.RegistrationPreregistered {
		return fmt.Errorf("registration must be %q or %q, not %q", gateway.RegistrationOpen, gateway.RegistrationPreregistered, h.RegistrationMode)
	}
	if _, err := gateway.NormalizeDomainList(h.Allow); err != nil {
		return fmt.Errorf("allow: %w", err)
	}
	if _, err := gateway.NormalizeDomainList(h.Deny); err != nil {
		return fmt.Errorf("deny: %w", err)
	}
	if h.profiles, err = h.gatewayProfiles(); err != nil {
		return err
	}
	return gateway.CheckProfiles(h.profiles, h.DefaultProfile)
}
