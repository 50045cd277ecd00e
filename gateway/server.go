// Package gateway is the ACME server (RFC 8555): the protocol, its
// resources and their rules, independent of Caddy. It works through
// storage.Store for its state, an Issuer for certificates and a Validator
// for challenges; caddyacmegw wires it into Caddy as an HTTP handler.
package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Registration modes.
const (
	// RegistrationOpen lets any client create an account.
	RegistrationOpen = "open"
	// RegistrationPreregistered needs an external account binding with a
	// key an officer registered beforehand.
	RegistrationPreregistered = "preregistered"
)

// Challenge types.
const (
	ChallengeHTTP01    = challengeHTTP01
	ChallengeDNS01     = challengeDNS01
	ChallengeTLSALPN01 = challengeTLSALPN01
)

// Config is what a Server serves: its policy and the parts it works
// through. The zero value of a policy field takes its default.
type Config struct {
	// Name names the gateway in logs; Servers of one name share state.
	Name string
	// PathPrefix is the path of the resources ("" for the root, else
	// "/acme"-like); BaseURL their external URL, or "" to take it from
	// each request.
	PathPrefix, BaseURL string
	// Challenges are the challenge types offered. Default: http-01, dns-01.
	Challenges []string
	// OrderLifetime (default 1h), AuthzLifetime (24h) and NonceLifetime
	// (30m) bound how long an order, an authorization and a nonce stay
	// usable.
	OrderLifetime, AuthzLifetime, NonceLifetime time.Duration
	// MaxValidationsPerAccount caps the validations one account may have
	// running or waiting. Default: 16.
	MaxValidationsPerAccount int
	// ValidationAttempts is how often a failing validation is tried.
	// Default: 1.
	ValidationAttempts int
	// CAAIdentities are shown in the directory's meta; CAA checking is on
	// when set.
	CAAIdentities []string
	// TermsOfService and Website are URLs shown in the directory's meta.
	TermsOfService, Website string
	// RegistrationMode is RegistrationOpen (default) or
	// RegistrationPreregistered.
	RegistrationMode string
	// Allow, when set, limits orders to names equal to or below one of its
	// domains; Deny refuses names equal to or below one of its.
	Allow, Deny []string
	// NoWildcardNames refuses wildcard identifiers.
	NoWildcardNames bool
	// AllowIP are the networks whose addresses may be ordered.
	AllowIP []netip.Prefix
	// MaxIdentifiers caps the identifiers of one order. Default: 100.
	MaxIdentifiers int
	// AddAccountContactEmail puts the account's first contact e-mail into
	// certificates.
	AddAccountContactEmail bool
	// Limits are the rate limits; see Limits for their defaults.
	Limits Limits
	// Profiles are the certificate profiles offered (draft-ietf-acme-profiles);
	// none: orders name no profile. DefaultProfile is the profile of
	// orders that name none. Default: the first of Profiles.
	Profiles       []Profile
	DefaultProfile string
	// RenewalInfoRetryAfter is the Retry-After of renewal information
	// (RFC 9773): how long clients wait before asking again. Default: 6h.
	RenewalInfoRetryAfter time.Duration

	// Store keeps accounts, orders and certificates; Nonces issues and
	// redeems nonces. Both required.
	Store  storage.Store
	Nonces storage.Nonces
	// Issuer signs certificates; Validator validates challenges. Both
	// required.
	Issuer    Issuer
	Validator Validator
	// Validations runs validations in the background; Pending tracks the
	// orders waiting on a Resumer issuer. Servers of one gateway share
	// them. Default: a pool of 64 of their own, and a set of their own.
	Validations *ValidationPool
	Pending     *PendingOrders
	// Metrics receives what the Server does. Default: nothing.
	Metrics Metrics
	// Counter keeps the counts of Limits. Default: a MemoryCounter of
	// the Server's own.
	Counter Counter
	// ClientIP is the client's IP address of a request, for
	// Limits.AccountsPerIP. Default: RemoteIP.
	ClientIP func(*http.Request) string
	// Logger default: none. Now default: time.Now.
	Logger *zap.Logger
	Now    func() time.Time
}

// Server is one ACME server. It is safe for concurrent use.
type Server struct {
	cfg         Config
	allowIP     []netip.Prefix
	allow, deny []string // Allow and Deny, normalized
	store       storage.Store
	nonces      storage.Nonces
	accountKeys *keyCache // parsed account keys for kid requests
	issuer      Issuer
	validator   Validator
	logger      *zap.Logger
	now         func() time.Time
	validating  *ValidationPool
	pending     *PendingOrders
	metrics     Metrics
	counter     Counter
	mux         *http.ServeMux // the resources of routeTable
	stop        func()         // ends the background work
}

// pendingPoll is how often orders waiting at the CA are polled.
const pendingPoll = 2 * time.Second

// New checks cfg, fills in its defaults and returns a Server. When the
// issuer is a Resumer, the Server polls the orders waiting on it in the
// background until Close.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Nonces == nil || cfg.Issuer == nil || cfg.Validator == nil {
		return nil, errors.New("gateway: Store, Nonces, Issuer and Validator are required")
	}
	if err := CheckProfiles(cfg.Profiles, cfg.DefaultProfile); err != nil {
		return nil, err
	}
	setDefaults(&cfg)
	allow, err := NormalizeDomainList(cfg.Allow)
	if err != nil {
		return nil, err
	}
	deny, err := NormalizeDomainList(cfg.Deny)
	if err != nil {
		return nil, err
	}
	h := &Server{cfg: cfg, allowIP: cfg.AllowIP, allow: allow, deny: deny,
		store: cfg.Store, nonces: cfg.Nonces, accountKeys: new(keyCache),
		issuer: cfg.Issuer, validator: cfg.Validator, logger: cfg.Logger, now: cfg.Now,
		validating: cfg.Validations, pending: cfg.Pending, metrics: cfg.Metrics, counter: cfg.Counter, stop: func() {}}
	h.mux = h.newMux(cfg.PathPrefix)
	if h.validating == nil {
		h.validating = NewValidationPool(64)
		h.stop = func() { _ = h.validating.Stop() }
	}
	if _, ok := h.issuer.(Resumer); ok {
		if h.pending == nil {
			h.pending = &PendingOrders{}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.pollPending(ctx, pendingPoll)
		}()
		stopPool := h.stop
		h.stop = func() {
			cancel()
			// A CA call in flight may take up to issueTimeout; Close
			// waits for it only briefly, and the stored state lets the
			// next poll finish what it leaves.
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
			stopPool()
		}
	}
	return h, nil
}

func setDefaults(cfg *Config) {
	if cfg.PathPrefix = "/" + strings.Trim(cfg.PathPrefix, "/"); cfg.PathPrefix == "/" {
		cfg.PathPrefix = "" // served at the root: /directory, /new-order, ...
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if len(cfg.Challenges) == 0 {
		cfg.Challenges = []string{challengeHTTP01, challengeDNS01}
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.OrderLifetime, time.Hour}, {&cfg.AuthzLifetime, 24 * time.Hour}, {&cfg.NonceLifetime, 30 * time.Minute},
		{&cfg.RenewalInfoRetryAfter, defaultRenewalInfoRetryAfter}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, n := range []struct {
		v   *int
		def int
	}{{&cfg.MaxValidationsPerAccount, 16}, {&cfg.ValidationAttempts, 1}, {&cfg.MaxIdentifiers, 100}} {
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if cfg.RegistrationMode == "" {
		cfg.RegistrationMode = RegistrationOpen
	}
	if cfg.DefaultProfile == "" && len(cfg.Profiles) > 0 {
		cfg.DefaultProfile = cfg.Profiles[0].Name
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NoMetrics{}
	}
	setLimitDefaults(&cfg.Limits, cfg.AuthzLifetime)
	if cfg.Counter == nil {
		cfg.Counter = NewMemoryCounter(cfg.Now)
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = RemoteIP
	}
}

// Close stops the Server's background work.
func (h *Server) Close() { h.stop() }

// Config is the Server's configuration, its defaults filled in.
func (h *Server) Config() Config { return h.cfg }

// Handle serves r when its path is one of the Server's resources, and
// reports whether it did; other paths are left to the caller. Below a
// PathPrefix every path is the Server's (an unknown one is a 404
// problem); at the root, only its resources are.
func (h *Server) Handle(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, h.cfg.PathPrefix)
	switch {
	case !ok || (rest != "" && rest[0] != '/'):
		return false
	case h.cfg.PathPrefix == "" && !h.isResource(r):
		// At the root, the site's other paths belong to other handlers.
		return false
	case rest == "":
		h.write(w, r, nil, notFound("resource"))
	default:
		h.mux.ServeHTTP(w, r)
	}
	return true
}

// ServeHTTP implements http.Handler: paths that are not the Server's
// resources are not found.
func (h *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Handle(w, r) {
		http.NotFound(w, r)
	}
}

// baseURL is the external URL of PathPrefix for this request.
func (h *Server) baseURL(r *http.Request) string {
	if h.cfg.BaseURL != "" {
		return h.cfg.BaseURL
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + h.cfg.PathPrefix
}

// detach keeps a request's values but not its cancellation, for the writes
// of a state change: a client that hangs up must not leave one half done.
func detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
