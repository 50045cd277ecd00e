// Package validate checks ACME challenges for the ACME server: http-01
// (RFC 8555 §8.3), dns-01 (RFC 8555 §8.4) and tls-alpn-01 (RFC 8737), for
// DNS names and IP addresses (RFC 8738), and checks CAA (RFC 8659, with
// the RFC 8657 parameters) before issuance. It knows nothing of Caddy and
// builds no problem documents: every validation failure is an *Error whose
// Kind the server maps to an RFC 8555 problem type.
//
// Every DNS lookup (TXT for dns-01, CAA, A and AAAA for http-01, its
// redirects and tls-alpn-01) goes to the configured resolvers through
// miekg/dns, never through the system resolver, so the answers do not
// depend on the host's nsswitch, caches or /etc/hosts. With DNSSECRequired
// the TXT and CAA answers must carry the resolver's AD bit.
//
// A Validator holds only its configuration: each call builds its own HTTP
// transport and DNS clients, so it is safe for concurrent use and shares no
// connections between validations.
//
// DenyNetworks is checked before every dial, by http-01 and tls-alpn-01
// alike (a natural place for a default deny list of private ranges).
package validate

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	defaultHTTPPort  = 80
	defaultHTTPSPort = 443
	defaultTLSPort   = 443
	defaultTimeout   = 10 * time.Second
	defaultUserAgent = "caddyacmegw-validator"
	resolvConfPath   = "/etc/resolv.conf"
)

// Config configures a Validator. The zero value is usable.
type Config struct {
	// Resolvers are DNS servers "host:port" used for every lookup validation
	// makes (TXT for dns-01, A/AAAA for http-01), tried in order. Default:
	// the nameservers in /etc/resolv.conf.
	Resolvers []string
	// HTTPPort is the port http-01 connects to. Default 80. Redirects may
	// target http on port 80 or on HTTPPort.
	HTTPPort int
	// HTTPSPort is the port, besides 443, that an http-01 redirect to https
	// may target. Default 443. Only tests and lab setups change it.
	HTTPSPort int
	// TLSPort is the port tls-alpn-01 connects to. Default 443. Only tests
	// and lab setups change it.
	TLSPort int
	// Timeout bounds one whole validation attempt, redirects and CNAME
	// chasing included. Default 10s. One DNS query and one TCP connect each
	// get a third of it, so one dead resolver or address leaves time for
	// the next.
	Timeout time.Duration
	// UserAgent is sent by http-01. Default "caddyacmegw-validator".
	UserAgent string
	// DenyNetworks are networks validation never connects to: an http-01
	// address inside one is skipped as if unreachable. Default: none (allow
	// all). Does not apply to Resolvers, which the operator chose.
	DenyNetworks []netip.Prefix
	// CAAIdentities are the issuer domain names of this CA as they appear
	// in CAA issue and issuewild records, e.g. "ca.example.net". Default:
	// none, which turns CAA checking off (CAA always allows).
	CAAIdentities []string
	// DNSSECRequired makes every query ask for DNSSEC validation (DO and AD
	// bits) and makes the dns-01 TXT and the CAA lookups fail unless the
	// resolver's answers carry the AD bit. The Resolvers must then be
	// validating resolvers the server trusts, reached over a trusted path.
	// Default false.
	DNSSECRequired bool
}

// Validator performs challenge validations. Create it with New; it is safe
// for concurrent use.
type Validator struct {
	resolver  resolver
	httpPort  int
	httpsPort int
	tlsPort   int
	timeout   time.Duration
	userAgent string
	deny      []netip.Prefix
	// caaIDs are CAAIdentities lower-cased; empty turns CAA checking off.
	caaIDs         []string
	dnssecRequired bool
}

// New checks cfg, applies its defaults and returns a Validator. With no
// Resolvers it reads /etc/resolv.conf once, here.
func New(cfg Config) (*Validator, error) {
	v := &Validator{
		httpPort:  cfg.HTTPPort,
		httpsPort: cfg.HTTPSPort,
		tlsPort:   cfg.TLSPort,
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,

		dnssecRequired: cfg.DNSSECRequired,
	}
	if v.httpPort == 0 {
		v.httpPort = defaultHTTPPort
	}
	if v.httpsPort == 0 {
		v.httpsPort = defaultHTTPSPort
	}
	if v.tlsPort == 0 {
		v.tlsPort = defaultTLSPort
	}
	if v.timeout == 0 {
		v.timeout = defaultTimeout
	}
	if v.userAgent == "" {
		v.userAgent = defaultUserAgent
	}
	if v.httpPort < 1 || v.httpPort > 65535 {
		return nil, fmt.Errorf("validate: http port %d out of range", cfg.HTTPPort)
	}
	if v.httpsPort < 1 || v.httpsPort > 65535 {
		return nil, fmt.Errorf("validate: https port %d out of range", cfg.HTTPSPort)
	}
	if v.tlsPort < 1 || v.tlsPort > 65535 {
		return nil, fmt.Errorf("validate: tls port %d out of range", cfg.TLSPort)
	}
	if v.timeout < 0 {
		return nil, fmt.Errorf("validate: negative timeout %s", cfg.Timeout)
	}
	for _, p := range cfg.DenyNetworks {
		if !p.IsValid() {
			return nil, errors.New("validate: invalid network in deny list")
		}
		// Unmapped so that ::ffff:10.0.0.1/128 and 10.0.0.1/32 mean the same.
		v.deny = append(v.deny, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
	}

	for _, id := range cfg.CAAIdentities {
		id = strings.ToLower(strings.TrimSuffix(id, "."))
		if !isIssuerDomain(id) {
			return nil, fmt.Errorf("validate: CAA identity %q is not a domain name", id)
		}
		v.caaIDs = append(v.caaIDs, id)
	}

	servers := cfg.Resolvers
	if len(servers) == 0 {
		var err error
		if servers, err = systemResolvers(resolvConfPath); err != nil {
			return nil, err
		}
	}
	for _, s := range servers {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("validate: resolver %q: %w", s, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return nil, fmt.Errorf("validate: resolver %q: want host:port", s)
		}
	}
	v.resolver = resolver{
		servers:      append([]string(nil), servers...),
		queryTimeout: v.timeout / 3,
		dnssec:       cfg.DNSSECRequired,
	}
	return v, nil
}

// systemResolvers reads the nameservers of a resolv.conf file as host:port.
func systemResolvers(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("validate: no resolvers configured and %s unreadable: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("validate: no resolvers configured and none in %s", path)
	}
	servers := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		servers = append(servers, net.JoinHostPort(s, cc.Port))
	}
	return servers, nil
}

// unmappedBits is the prefix length of p once its address is unmapped from
// IPv4-in-IPv6.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// denied reports whether validation must not connect to a.
func (v *Validator) denied(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range v.deny {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkName rejects names no caller should pass; such a call is a bug in
// the server, so it gets a plain error rather than an *Error.
func checkName(domain string) error {
	if domain == "" || len(domain) > 253 {
		return fmt.Errorf("validate: invalid domain %q", domain)
	}
	if domain[0] == '*' {
		return fmt.Errorf("validate: domain %q: strip the wildcard label first", domain)
	}
	if _, ok := dns.IsDomainName(domain); !ok {
		return fmt.Errorf("validate: invalid domain %q", domain)
	}
	return nil
}
