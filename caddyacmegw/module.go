// Package caddyacmegw is an ACME server (RFC 8555) as a Caddy HTTP handler:
// the gateway between ACME clients and an enterprise CA. It owns the wire
// protocol; storage, challenge validation and certificate issuance sit
// behind small interfaces in their own packages and modules.
package caddyacmegw

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is an ACME server. Its resources live under PathPrefix.
type Handler struct {
	// Name namespaces this gateway's storage and names it in the admin API.
	// Handlers with the same name are one gateway: they share accounts,
	// orders and nonces (one gateway served on several sites). Give each
	// gateway that must keep apart a name of its own. Default: "default".
	Name string `json:"name,omitempty"`

	// PathPrefix is the path under which the ACME resources live; the
	// directory is at <PathPrefix>/directory. "/" serves them at the root
	// and leaves the site's other paths to other handlers. Default: "/acme".
	PathPrefix string `json:"path_prefix,omitempty"`

	// BaseURL is the external URL of PathPrefix, for a gateway behind a
	// load balancer (e.g. "https://acme.example.com/acme"). Default: taken
	// from each request's scheme and Host.
	BaseURL string `json:"base_url,omitempty"`

	// Challenges lists the challenge types offered. Default: http-01 and
	// dns-01. An empty list is refused.
	Challenges []string `json:"challenges,omitempty"`

	// Resolvers are the DNS servers ("host:port") that every validation
	// lookup goes through. Default: those of /etc/resolv.conf. An empty
	// list is refused.
	Resolvers []string `json:"resolvers,omitempty"`

	// HTTPPort is the port http-01 validation connects to. Default: 80.
	HTTPPort int `json:"http_port,omitempty"`

	// OrderLifetime is how long an order stays usable. Default: 1h.
	OrderLifetime caddy.Duration `json:"order_lifetime,omitempty"`

	// AuthzLifetime is how long an authorization stays usable. A valid one
	// is reused by new orders while it outlives them, that is for
	// AuthzLifetime minus OrderLifetime. Default: 24h.
	AuthzLifetime caddy.Duration `json:"authz_lifetime,omitempty"`

	// NonceLifetime is how long a nonce may wait before use. Default: 30m.
	NonceLifetime caddy.Duration `json:"nonce_lifetime,omitempty"`

	// RenewalInfoRetryAfter is the Retry-After of renewal information
	// (RFC 9773): how long ACME clients wait before asking again whether
	// a certificate's renewal window moved. Default: 6h.
	RenewalInfoRetryAfter caddy.Duration `json:"renewal_info_retry_after,omitempty"`

	// ValidationTimeout bounds one challenge validation. Default: 30s.
	ValidationTimeout caddy.Duration `json:"validation_timeout,omitempty"`

	// MaxValidations caps validations running at once; 8 times as many
	// may wait, and a free slot goes to the accounts with validations
	// waiting in turn. Once that queue is full, an account with nothing in
	// it still gets a place (as many as the queue has); one with
	// validations in it gets rateLimited. Default: 64.
	MaxValidations int `json:"max_validations,omitempty"`

	// MaxValidationsPerAccount caps the validations one account may have
	// running or waiting, so that one client cannot starve the others.
	// Default: 16.
	MaxValidationsPerAccount int `json:"max_validations_per_account,omitempty"`

	// ValidationAttempts is how often a failing validation is tried, with
	// a short delay between tries, for networks where a first try may
	// fail. Default: 1.
	ValidationAttempts int `json:"validation_attempts,omitempty"`

	// TLSALPNPort is the port tls-alpn-01 validation connects to.
	// Default: 443.
	TLSALPNPort int `json:"tls_alpn_port,omitempty"`

	// DenyValidationTo lists networks (CIDR) validation never connects
	// to. ["none"] empties it; [] is refused. Default: loopback, link-local (with
	// 169.254.169.254), multicast and unspecified addresses, and the cloud
	// metadata addresses fd00:ec2::254 and 100.100.100.200; private ranges
	// stay allowed, because enterprise names live there.
	DenyValidationTo []string `json:"deny_validation_to,omitempty"`

	// CAAIdentities are the issuer domain names CAA records must name to
	// allow issuance (RFC 8659); shown in the directory's meta. Empty: no
	// CAA checking.
	CAAIdentities []string `json:"caa_identities,omitempty"`

	// DNSSECRequired makes dns-01 and CAA lookups fail when the validating
	// resolver does not vouch for the answer (AD bit).
	DNSSECRequired bool `json:"dnssec_required,omitempty"`

	// AllowIP lists networks (CIDR) whose addresses may be ordered as ip
	// identifiers (RFC 8738), validated by http-01 or tls-alpn-01. Empty:
	// ip identifiers are refused.
	AllowIP []string `json:"allow_ip,omitempty"`

	// TermsOfService is the URL shown in the directory's meta.
	TermsOfService string `json:"terms_of_service,omitempty"`

	// Website is the URL shown in the directory's meta.
	Website string `json:"website,omitempty"`

	// RegistrationMode is "open", where any client may create an account, or
	// "preregistered", where creating one needs an external account
	// binding with a key an officer registered beforehand. In open mode a
	// binding, when sent, is verified and links the account to its
	// registration. Default: "open".
	RegistrationMode string `json:"registration,omitempty"`

	// Allow, when set, limits orders to names equal to or below one of its
	// domains (whole labels; "*.example.com" covers only names below).
	Allow []string `json:"allow,omitempty"`

	// Deny refuses names equal to or below one of its domains.
	Deny []string `json:"deny,omitempty"`

	// AllowWildcardNames permits wildcard identifiers. Default: true.
	AllowWildcardNames *bool `json:"allow_wildcard_names,omitempty"`

	// MaxIdentifiers caps the identifiers of one order. Default: 100.
	MaxIdentifiers int `json:"max_identifiers,omitempty"`

	// AddAccountContactEmail puts the account's first contact e-mail that
	// its registration lists (the officer's emails) into issued
	// certificates as an rfc822Name SAN; a contact the registration does
	// not list, or an account without a registration, gets none.
	AddAccountContactEmail bool `json:"add_account_contact_email,omitempty"`

	// Limits are the rate limits; see Limits for each one's default.
	Limits *Limits `json:"limits,omitempty"`

	// StorageRaw selects where registrations are kept. Default: "bolt", an
	// embedded database file beside Caddy's own files, when Caddy keeps
	// them in its file_system storage on a local disk; otherwise "caddy",
	// Caddy's configured storage itself.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=acme_gateway.storage inline_key=module"`

	// IssuerRaw selects what signs certificates. Default: "local", Caddy's
	// local CA of the pki app.
	IssuerRaw json.RawMessage `json:"issuer,omitempty" caddy:"namespace=acme_gateway.issuers inline_key=module"`

	// Profiles are the certificate profiles clients may order under
	// (draft-ietf-acme-profiles), offered in the directory's
	// meta.profiles. Default: none; orders then name no profile.
	Profiles []ProfileConfig `json:"profiles,omitempty"`

	// DefaultProfile is the profile of orders that name none. Default: the
	// first of Profiles.
	DefaultProfile string `json:"default_profile,omitempty"`

	// allowIP and denyValidationTo are AllowIP and DenyValidationTo as
	// validate parsed them; profiles are Profiles as it converted them.
	allowIP, denyValidationTo []netip.Prefix
	profiles                  []gateway.Profile

	store  storage.Store
	issuer gateway.Issuer
	logger *zap.Logger
	now    func() time.Time
	gw     *gateway.Server
	// validations counts validation outcomes for the console's overview.
	validations *validationTally
	// cleanup runs at Cleanup, last first.
	cleanup []func() error
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.acme_gateway",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and opens storage, issuer and validator.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	// An empty list in JSON would otherwise take the default silently.
	if err := h.checkEmptyLists(); err != nil {
		return err
	}
	h.setDefaults()
	if err := h.validate(); err != nil {
		return err
	}
	cfg := gateway.Config{
		Name: h.Name, PathPrefix: h.PathPrefix, BaseURL: h.BaseURL, Challenges: h.Challenges,
		OrderLifetime: time.Duration(h.OrderLifetime), AuthzLifetime: time.Duration(h.AuthzLifetime),
		NonceLifetime:            time.Duration(h.NonceLifetime),
		RenewalInfoRetryAfter:    time.Duration(h.RenewalInfoRetryAfter),
		MaxValidationsPerAccount: h.MaxValidationsPerAccount, ValidationAttempts: h.ValidationAttempts,
		CAAIdentities: h.CAAIdentities, TermsOfService: h.TermsOfService, Website: h.Website,
		RegistrationMode: h.RegistrationMode, Allow: h.Allow, Deny: h.Deny,
		NoWildcardNames: !*h.AllowWildcardNames, MaxIdentifiers: h.MaxIdentifiers,
		AddAccountContactEmail: h.AddAccountContactEmail,
		Limits:                 h.Limits.gatewayLimits(), ClientIP: clientIP,
		Logger: h.logger, Now: h.now, AllowIP: h.allowIP,
	}

	if h.StorageRaw == nil {
		h.StorageRaw = defaultStorage(ctx, h.Name, h.logger)
	}
	mod, err := ctx.LoadModule(h, "StorageRaw")
	if err != nil {
		return fmt.Errorf("loading storage: %w", err)
	}
	storeModule := mod
	store, closeStore, err := mod.(StoreOpener).OpenStore(ctx, h.Name)
	if err != nil {
		return fmt.Errorf("opening storage: %w", err)
	}
	h.store, cfg.Store = store, store
	h.cleanup = append(h.cleanup, closeStore)

	if n, ok := store.(storage.Nonces); ok {
		cfg.Nonces = n
	} else {
		n, release, err := sharedNonces(h.Name, time.Duration(h.NonceLifetime), h.now)
		if err != nil {
			return err
		}
		cfg.Nonces = n
		h.cleanup = append(h.cleanup, release)
	}

	if c, ok := store.(gateway.Counter); ok {
		cfg.Counter = c
	} else {
		c, release, err := sharedCounter(h.Name, h.now)
		if err != nil {
			return err
		}
		cfg.Counter = c
		h.cleanup = append(h.cleanup, release)
	}

	if h.IssuerRaw == nil {
		h.IssuerRaw = json.RawMessage(`{"module":"local"}`)
	}
	mod, err = ctx.LoadModule(h, "IssuerRaw")
	if err != nil {
		return fmt.Errorf("loading issuer: %w", err)
	}
	h.issuer = mod.(gateway.Issuer)
	cfg.Issuer = h.issuer
	if r, ok := h.issuer.(emailRefuser); ok && h.AddAccountContactEmail {
		return fmt.Errorf("add_account_contact_email cannot be used with this issuer: %s", r.RefusesEmail())
	}
	if err := h.checkIssuerProfiles(); err != nil {
		return err
	}
	cfg.Profiles, cfg.DefaultProfile = h.profiles, h.DefaultProfile

	v, err := validate.New(validate.Config{
		Resolvers:      h.Resolvers,
		HTTPPort:       h.HTTPPort,
		TLSPort:        h.TLSALPNPort,
		Timeout:        time.Duration(h.ValidationTimeout),
		DenyNetworks:   h.denyValidationTo,
		CAAIdentities:  h.CAAIdentities,
		DNSSECRequired: h.DNSSECRequired,
	})
	if err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	cfg.Validator = v
	validating, release, err := sharedValidations(h.Name, h.MaxValidations)
	if err != nil {
		return err
	}
	cfg.Validations = validating
	h.cleanup = append(h.cleanup, release)

	if _, ok := h.issuer.(gateway.Resumer); ok {
		pending, release, err := sharedPending(h.Name)
		if err != nil {
			return err
		}
		cfg.Pending = pending
		h.cleanup = append(h.cleanup, release)
	}

	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if cfg.Metrics, err = newPromMetrics(reg, h.Name); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	h.validations = newValidationTally(cfg.Metrics, h.now())
	cfg.Metrics = h.validations
	if h.gw, err = gateway.New(cfg); err != nil {
		return err
	}
	h.cleanup = append(h.cleanup, func() error { h.gw.Close(); return nil })
	h.logger.Info("acme gateway ready", zap.String("gateway", h.Name),
		zap.String("directory", h.directoryURLFor("<this site>")), zap.String("registration", h.RegistrationMode),
		zap.String("storage", describe(storeModule)), zap.String("issuer", describe(h.issuer)))
	gateways.add(h)
	h.cleanup = append(h.cleanup, func() error { gateways.remove(h); return nil })
	return nil
}

// Cleanup stops background work and releases storage.
func (h *Handler) Cleanup() error {
	var first error
	for i := len(h.cleanup) - 1; i >= 0; i-- {
		if err := h.cleanup[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ServeHTTP answers requests for the gateway's resources and passes
// others on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.gw.Handle(w, r) {
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// directoryURLFor is the directory's URL: base_url's when set, else on
// host, which only a request tells (the log at start names a placeholder).
func (h *Handler) directoryURLFor(host string) string {
	if h.BaseURL != "" {
		return strings.TrimSuffix(h.BaseURL, "/") + gateway.PathDirectory
	}
	return "https://" + host + strings.TrimSuffix(h.PathPrefix, "/") + gateway.PathDirectory
}

// describe is what a storage or issuer module says of itself, or its
// type.
func describe(m any) string {
	if d, ok := m.(describer); ok {
		return d.Describe()
	}
	return fmt.Sprintf("%T", m)
}
