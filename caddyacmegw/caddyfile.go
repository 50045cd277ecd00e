package caddyacmegw

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("acme_gateway", parseCaddyfile)
	// Among the handlers that respond, but after abort and error, so that
	// an operator's blocking rules still apply to the ACME paths.
	httpcaddyfile.RegisterDirectiveOrder("acme_gateway", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var g Handler
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return &g, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	acme_gateway [<matcher>] {
//		name              <id>
//		path_prefix       <path>
//		base_url          <url>
//		challenges        <type...>
//		resolvers         <host:port...>
//		http_port         <port>
//		order_lifetime    <duration>
//		authz_lifetime    <duration>
//		nonce_lifetime    <duration>
//		validation_timeout <duration>
//		max_validations   <n>
//		terms_of_service  <url>
//		website           <url>
//		registration      open | preregistered
//		allow             <domain...>
//		deny              <domain...>
//		allow_wildcard_names [true | false]
//		max_identifiers   <n>
//		allow_ip          <cidr...>
//		max_validations_per_account <n>
//		validation_attempts <n>
//		tls_alpn_port     <port>
//		deny_validation_to <cidr...> | none
//		caa_identities    <domain...>
//		dnssec_required
//		add_account_contact_email
//		limits {
//			<limit> <count> [<window>] | off
//		}
//		storage           caddy | memory | <module> [<args...>]
//		issuer            local [<pki ca id>] { lifetime <duration> }
//		profile           <name> { description <text>; lifetime <duration>; key_usages <usage...>; ext_key_usages <usage...>; procedure <name> }
//		default_profile   <name>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "name":
			err = oneArg(d, &h.Name)
		case "path_prefix":
			err = oneArg(d, &h.PathPrefix)
		case "base_url":
			err = oneArg(d, &h.BaseURL)
		case "terms_of_service":
			err = oneArg(d, &h.TermsOfService)
		case "website":
			err = oneArg(d, &h.Website)
		case "challenges":
			h.Challenges = d.RemainingArgs()
			if len(h.Challenges) == 0 {
				err = d.ArgErr()
			}
		case "resolvers":
			h.Resolvers = d.RemainingArgs()
			if len(h.Resolvers) == 0 {
				err = d.ArgErr()
			}
		case "http_port":
			err = intArg(d, &h.HTTPPort)
		case "max_validations":
			err = intArg(d, &h.MaxValidations)
		case "order_lifetime":
			err = durationArg(d, &h.OrderLifetime)
		case "authz_lifetime":
			err = durationArg(d, &h.AuthzLifetime)
		case "nonce_lifetime":
			err = durationArg(d, &h.NonceLifetime)
		case "validation_timeout":
			err = durationArg(d, &h.ValidationTimeout)
		case "registration":
			err = oneArg(d, &h.RegistrationMode)
		case "allow":
			h.Allow = append(h.Allow, d.RemainingArgs()...)
			if len(h.Allow) == 0 {
				err = d.ArgErr()
			}
		case "deny":
			h.Deny = append(h.Deny, d.RemainingArgs()...)
			if len(h.Deny) == 0 {
				err = d.ArgErr()
			}
		case "allow_wildcard_names":
			h.AllowWildcardNames, err = boolArg(d)
		case "max_identifiers":
			err = intArg(d, &h.MaxIdentifiers)
		case "add_account_contact_email":
			if d.NextArg() {
				err = d.ArgErr()
			}
			h.AddAccountContactEmail = true
		case "max_validations_per_account":
			err = intArg(d, &h.MaxValidationsPerAccount)
		case "validation_attempts":
			err = intArg(d, &h.ValidationAttempts)
		case "tls_alpn_port":
			err = intArg(d, &h.TLSALPNPort)
		case "deny_validation_to":
			h.DenyValidationTo = append(h.DenyValidationTo, d.RemainingArgs()...)
			if len(h.DenyValidationTo) == 0 {
				err = d.ArgErr()
			}
		case "caa_identities":
			h.CAAIdentities = append(h.CAAIdentities, d.RemainingArgs()...)
			if len(h.CAAIdentities) == 0 {
				err = d.ArgErr()
			}
		case "dnssec_required":
			if d.NextArg() {
				err = d.ArgErr()
			}
			h.DNSSECRequired = true
		case "allow_ip":
			h.AllowIP = append(h.AllowIP, d.RemainingArgs()...)
			if len(h.AllowIP) == 0 {
				err = d.ArgErr()
			}
		case "limits":
			if h.Limits == nil {
				h.Limits = new(Limits)
			}
			err = h.Limits.unmarshalCaddyfile(d)
		case "storage":
			h.StorageRaw, err = moduleArg(d, "acme_gateway.storage")
		case "issuer":
			h.IssuerRaw, err = moduleArg(d, "acme_gateway.issuers")
		case "profile":
			var pc ProfileConfig
			pc, err = unmarshalProfile(d)
			h.Profiles = append(h.Profiles, pc)
		case "default_profile":
			err = oneArg(d, &h.DefaultProfile)
		default:
			return d.Errf("unrecognized acme_gateway subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = n
	return nil
}

// boolArg reads an optional true/false; the bare subdirective means true.
func boolArg(d *caddyfile.Dispenser) (*bool, error) {
	v := true
	if d.NextArg() {
		b, err := strconv.ParseBool(d.Val())
		if err != nil {
			return nil, d.Errf("expected true or false, not %q", d.Val())
		}
		v = b
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	return &v, nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// moduleArg unmarshals "<subdirective> <module> [args] [{ block }]" into
// the module's JSON, with its name under the "module" key.
func moduleArg(d *caddyfile.Dispenser, namespace string) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, namespace+"."+name)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "module", name, nil), nil
}

// UnmarshalCaddyfile sets up the local issuer:
//
//	issuer local [<pki ca id>] {
//		lifetime <duration>
//	}
func (li *LocalIssuer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		li.CA = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "lifetime":
			if err := durationArg(d, &li.Lifetime); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized local issuer option %q", d.Val())
		}
	}
	return nil
}

// UnmarshalCaddyfile takes no options: `storage caddy`.
func (*CaddyStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return noOptions(d)
}

// UnmarshalCaddyfile takes no options: `storage memory`.
func (*MemoryStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return noOptions(d)
}

func noOptions(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() || d.NextBlock(d.Nesting()) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*LocalIssuer)(nil)
	_ caddyfile.Unmarshaler = (*CaddyStorage)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStorage)(nil)
)
