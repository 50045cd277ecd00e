// Package validate checks ACME challenges for the ACME server: http-01
// (RFC 8555 §8.3) and dns-01 (RFC 8555 §8.4). It knows nothing of Caddy and
// builds no problem documents: every validation failure is an *Error whose
// Kind the server maps to an RFC 8555 problem type.
//
// Every DNS lookup (TXT for dns-01, A and AAAA for http-01 and its
// redirects) goes to the configured resolvers through miekg/dns, never
// through the system resolver, so the answers do not depend on the host's
// nsswitch, caches or /etc/hosts.
//
// A Validator holds only its configuration: each call builds its own HTTP
// transport and DNS clients, so it is safe for concurrent use and shares no
// connections between validations.
//
// Later work hooks in here: DenyNetworks is checked before every dial (a
// natural place for a default deny list of private ranges), a CAA check
// (RFC 8659) would reuse resolver.lookup and return KindCAA, and tls-alpn-01
// (RFC 8737) would reuse dialHost and return KindTLS.
package validate

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

const (
	defaultHTTPPort  = 80
	defaultHTTPSPort = 443
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
}

// Validator performs challenge validations. Create it with New; it is safe
// for concurrent use.
type Validator struct {
	resolver  resolver
	httpPort  int
	httpsPort int
	timeout   time.Duration
	userAgent string
	deny      []netip.Prefix
}

// New checks cfg, applies its defaults and returns a Validator. With no
// Resolvers it reads /etc/resolv.conf once, here.
func New(cfg Config) (*Validator, error) {
	v := &Validator{
		httpPort:  cfg.HTTPPort,
		httpsPort: cfg.HTTPSPort,
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
	}
	if v.httpPort == 0 {
		v.httpPort = defaultHTTPPort
	}
	if v.httpsPort == 0 {
		v.httpsPort = defaultHTTPSPort
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
