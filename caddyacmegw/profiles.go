package caddyacmegw

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

// ProfileConfig is a certificate profile clients may order under
// (draft-ietf-acme-profiles): the directory offers it by name, and orders
// naming it are issued with its settings.
type ProfileConfig struct {
	// Name is what a client sends in newOrder's "profile". Required.
	Name string `json:"name"`

	// Description is shown beside the name in the directory's
	// meta.profiles. Default: none.
	Description string `json:"description,omitempty"`

	// Lifetime is the validity of the profile's certificates, and the
	// longest an order under it may ask for; issuer local only, within
	// its intermediate's validity. Default: the issuer's lifetime.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// KeyUsages are the key usages of the profile's certificates
	// (digital_signature, content_commitment, key_encipherment,
	// data_encipherment, key_agreement); issuer local only. Default:
	// digital_signature, with key_encipherment for RSA keys.
	KeyUsages []string `json:"key_usages,omitempty"`

	// ExtKeyUsages are the extended key usages of the profile's
	// certificates (server_auth, client_auth); issuer local only, within
	// its intermediate's. Default: server_auth and client_auth.
	ExtKeyUsages []string `json:"ext_key_usages,omitempty"`

	// Procedure is the issuer's procedure the profile's certificates are
	// issued through (issuer cm: one of its procedure names). It wins over
	// the procedure of the account's registration. Default: the
	// registration's, or else the issuer's default procedure.
	Procedure string `json:"procedure,omitempty"`
}

// keyUsageNames are the key usages a profile may give: those of a TLS
// leaf, never a CA's.
var keyUsageNames = map[string]x509.KeyUsage{
	"digital_signature":  x509.KeyUsageDigitalSignature,
	"content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment":   x509.KeyUsageKeyEncipherment,
	"data_encipherment":  x509.KeyUsageDataEncipherment,
	"key_agreement":      x509.KeyUsageKeyAgreement,
}

// extKeyUsageNames are the extended key usages a profile may give: those
// of a TLS server and client, the certificates ACME validates names for.
var extKeyUsageNames = map[string]x509.ExtKeyUsage{
	"server_auth": x509.ExtKeyUsageServerAuth,
	"client_auth": x509.ExtKeyUsageClientAuth,
}

// profileChecker is an issuer that says whether it can issue under a
// profile's settings.
type profileChecker interface {
	CheckProfile(p gateway.Profile) error
}

// gatewayProfiles turns the configured profiles into the gateway's,
// refusing usages it does not know.
func (h *Handler) gatewayProfiles() ([]gateway.Profile, error) {
	out := make([]gateway.Profile, 0, len(h.Profiles))
	for _, pc := range h.Profiles {
		p, err := pc.gatewayProfile()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// checkIssuerProfiles refuses profile settings the provisioned issuer
// cannot honour.
func (h *Handler) checkIssuerProfiles() error {
	c, ok := h.issuer.(profileChecker)
	for _, p := range h.profiles {
		switch {
		case ok:
			if err := c.CheckProfile(p); err != nil {
				return fmt.Errorf("profile %q: %w", p.Name, err)
			}
		case p.Lifetime != 0 || p.KeyUsage != 0 || len(p.ExtKeyUsage) > 0 || p.Procedure != "":
			return fmt.Errorf("profile %q: this issuer takes no profile settings, only a description", p.Name)
		}
	}
	return nil
}

func (pc ProfileConfig) gatewayProfile() (gateway.Profile, error) {
	p := gateway.Profile{Name: pc.Name, Description: pc.Description, Lifetime: time.Duration(pc.Lifetime), Procedure: pc.Procedure}
	if pc.Name == "" {
		return p, fmt.Errorf("a profile needs a name")
	}
	if pc.Lifetime < 0 {
		return p, fmt.Errorf("profile %q: lifetime must be positive, not %s", pc.Name, p.Lifetime)
	}
	for _, name := range pc.KeyUsages {
		ku, ok := keyUsageNames[name]
		if !ok {
			return p, fmt.Errorf("profile %q: key usage %q is not one of %s", pc.Name, name, strings.Join(slices.Sorted(maps.Keys(keyUsageNames)), ", "))
		}
		p.KeyUsage |= ku
	}
	for _, name := range pc.ExtKeyUsages {
		eku, ok := extKeyUsageNames[name]
		if !ok {
			return p, fmt.Errorf("profile %q: extended key usage %q is not one of %s", pc.Name, name, strings.Join(slices.Sorted(maps.Keys(extKeyUsageNames)), ", "))
		}
		if !slices.Contains(p.ExtKeyUsage, eku) {
			p.ExtKeyUsage = append(p.ExtKeyUsage, eku)
		}
	}
	return p, nil
}

// profileNames are the names of the configured profiles.
func (h *Handler) profileNames() []string {
	names := make([]string, len(h.Profiles))
	for i, p := range h.Profiles {
		names[i] = p.Name
	}
	return names
}

// unmarshalProfile reads
//
//	profile <name> {
//		description    <text>
//		lifetime       <duration>
//		key_usages     <usage...>
//		ext_key_usages <usage...>
//		procedure      <name>
//	}
func unmarshalProfile(d *caddyfile.Dispenser) (ProfileConfig, error) {
	var pc ProfileConfig
	if !d.NextArg() {
		return pc, d.ArgErr()
	}
	pc.Name = d.Val()
	if d.NextArg() {
		return pc, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "description":
			err = oneArg(d, &pc.Description)
		case "lifetime":
			err = durationArg(d, &pc.Lifetime)
		case "key_usages":
			if pc.KeyUsages = append(pc.KeyUsages, d.RemainingArgs()...); len(pc.KeyUsages) == 0 {
				err = d.ArgErr()
			}
		case "ext_key_usages":
			if pc.ExtKeyUsages = append(pc.ExtKeyUsages, d.RemainingArgs()...); len(pc.ExtKeyUsages) == 0 {
				err = d.ArgErr()
			}
		case "procedure":
			err = oneArg(d, &pc.Procedure)
		default:
			return pc, d.Errf("unrecognized profile option %q", d.Val())
		}
		if err != nil {
			return pc, err
		}
	}
	return pc, nil
}

// viewProfiles is a registration's profiles as officers see them: [] for
// none (all).
func viewProfiles(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}
