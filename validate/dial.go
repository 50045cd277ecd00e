package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

// resolveHost returns the addresses of host, IPv6 first: the host itself
// when it is an IP literal, else its AAAA and A records from the
// configured resolvers. Failures are *Error of KindDNS.
func (v *Validator) resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, newError(KindDNS, nil, "address %s has a zone", host)
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	if err := checkName(host); err != nil {
		return nil, newError(KindDNS, err, "invalid host name %s", truncate(host, 64))
	}

	// Both lookups at once, so a slow AAAA does not delay the A; exactly
	// two goroutines, both joined before returning.
	qtypes := [2]uint16{dns.TypeAAAA, dns.TypeA}
	var rrs [2][]dns.RR
	var errs [2]error
	var wg sync.WaitGroup
	for i, qt := range qtypes {
		wg.Go(func() { rrs[i], errs[i] = v.resolver.lookup(ctx, host, qt) })
	}
	wg.Wait()

	var addrs []netip.Addr
	for _, set := range rrs {
		for _, rr := range set {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.AAAA:
				ip = rr.AAAA
			case *dns.A:
				ip = rr.A
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	// Report the A failure first: IPv4 is what most hosts have.
	for _, err := range []error{errs[1], errs[0]} {
		var de *dnsError
		if errors.As(err, &de) {
			return nil, newError(KindDNS, err, "%s", de.detail())
		}
	}
	return nil, newError(KindDNS, nil, "DNS problem: no A or AAAA records found for %s", host)
}

// dialHost connects to host:port. It tries at most the first IPv6 and the
// first IPv4 address (as Let's Encrypt does) so a host with many records
// cannot stretch the attempt, skipping denied addresses. Failures are
// *Error: KindDNS from resolving, KindConnection naming every address tried.
// onConnect is called with the address that answered.
func (v *Validator) dialHost(ctx context.Context, host, port string, onConnect func(string)) (net.Conn, error) {
	addrs, err := v.resolveHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var candidates []netip.Addr
	var have4, have6, denied bool
	for _, a := range addrs {
		if v.denied(a) {
			denied = true
			continue
		}
		if a.Is4() && !have4 {
			have4 = true
			candidates = append(candidates, a)
		} else if a.Is6() && !have6 {
			have6 = true
			candidates = append(candidates, a)
		}
	}
	if len(candidates) == 0 && denied {
		return nil, newError(KindConnection, nil, "no address of %s may be connected to: all are denied by deny_validation_to, the networks validation never connects to", host)
	}

	d := net.Dialer{Timeout: v.timeout / 3}
	var failures []string
	var lastErr error
	for _, a := range candidates {
		addr := net.JoinHostPort(a.String(), port)
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			onConnect(addr)
			return conn, nil
		}
		lastErr = err
		failures = append(failures, fmt.Sprintf("%s: %s", addr, connReason(err)))
	}
	return nil, newError(KindConnection, lastErr, "connecting to %s: %s", host, strings.Join(failures, "; "))
}

// connReason names a dial or read failure in words safe for the client.
func connReason(err error) string {
	switch {
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address unreachable"
	default:
		return "connection failed"
	}
}
