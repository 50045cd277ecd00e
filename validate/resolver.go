package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxCNAMEHops bounds how many CNAMEs one lookup follows, across and
	// within answers, so a loop ends.
	maxCNAMEHops = 8
	// ednsUDPSize is the DNS Flag Day 2020 size: large enough for a few TXT
	// records, small enough to avoid IP fragmentation.
	ednsUDPSize = 1232
)

// errCNAMEChain means a lookup met more than maxCNAMEHops CNAMEs.
var errCNAMEChain = errors.New("CNAME chain too long")

// errNotAuthenticated means DNSSEC is required and an answer lacked the AD
// bit.
var errNotAuthenticated = errors.New("answer not authenticated (DNSSEC)")

// resolver sends queries to fixed servers with miekg/dns. It has no cache
// and no state besides its configuration.
type resolver struct {
	servers      []string
	queryTimeout time.Duration
	// dnssec sets the DO and AD bits on every query, asking the resolver
	// to validate and to say so in the AD bit of its answer.
	dnssec bool
}

// dnsError describes a failed lookup. Its detail names the queried name and
// the failure but not the resolver, which stays in Error for the logs.
type dnsError struct {
	qtype  uint16
	name   string
	server string // empty when no server was tried
	rcode  int    // -1 when there was no usable answer
	err    error
}

func (e *dnsError) Error() string {
	via := ""
	if e.server != "" {
		via = " via " + e.server
	}
	if e.err != nil {
		return fmt.Sprintf("DNS %s %s%s: %v", dns.TypeToString[e.qtype], e.name, via, e.err)
	}
	return fmt.Sprintf("DNS %s %s%s: %s", dns.TypeToString[e.qtype], e.name, via, e.reason())
}

func (e *dnsError) Unwrap() error { return e.err }

// detail is what the ACME client is told.
func (e *dnsError) detail() string {
	name := strings.TrimSuffix(e.name, ".")
	return fmt.Sprintf("DNS problem: %s looking up %s for %s", e.reason(), dns.TypeToString[e.qtype], name)
}

func (e *dnsError) reason() string {
	switch {
	case errors.Is(e.err, errNotAuthenticated):
		return errNotAuthenticated.Error()
	case errors.Is(e.err, errCNAMEChain):
		return fmt.Sprintf("CNAME chain longer than %d", maxCNAMEHops)
	case isTimeout(e.err):
		return "query timed out"
	case e.err != nil:
		return "query failed"
	case e.rcode == dns.RcodeNameError:
		return "NXDOMAIN (no such domain)"
	case e.rcode == dns.RcodeServerFailure:
		return "SERVFAIL"
	default:
		return "server answered " + dns.RcodeToString[e.rcode]
	}
}

// isTimeout reports whether err is a deadline being reached, of the
// context or of a connection.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// lookup returns the records of type qtype at name, following CNAMEs: those
// in the answer first, then by asking again for the last target when the
// resolver did not chase the chain itself. An empty result with a nil error
// means the name exists but has no such records. Every error is a *dnsError.
func (r *resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	rrs, _, err := r.lookupAuth(ctx, name, qtype)
	return rrs, err
}

// lookupAuth is lookup that also reports whether every answer it used had
// the AD bit set, NXDOMAIN answers included: a forged "no such name" must
// not slip past a DNSSEC requirement either.
func (r *resolver) lookupAuth(ctx context.Context, name string, qtype uint16) (rrs []dns.RR, authenticated bool, err error) {
	target := dns.Fqdn(name)
	hops := 0
	authenticated = true
	for {
		resp, err := r.exchange(ctx, target, qtype)
		if err != nil {
			return nil, false, err
		}
		authenticated = authenticated && resp.AuthenticatedData
		rrs, final, err := walkAnswer(resp.Answer, target, qtype, &hops)
		if err != nil {
			return nil, false, &dnsError{qtype: qtype, name: dns.Fqdn(name), rcode: -1, err: err}
		}
		if len(rrs) > 0 {
			return rrs, authenticated, nil
		}
		if final == target {
			if resp.Rcode == dns.RcodeNameError {
				return nil, authenticated, &dnsError{qtype: qtype, name: target, rcode: resp.Rcode}
			}
			return nil, authenticated, nil
		}
		// hops was counted by walkAnswer and bounds this loop.
		target = final
	}
}

// secureLookup is lookup for the records that prove or forbid issuance (TXT
// for dns-01, CAA): with DNSSECRequired, an answer or NXDOMAIN without the
// AD bit is a *dnsError wrapping errNotAuthenticated.
func (v *Validator) secureLookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	rrs, authenticated, err := v.resolver.lookupAuth(ctx, name, qtype)
	if v.dnssecRequired && !authenticated && (err == nil || isNXDOMAIN(err)) {
		return nil, &dnsError{qtype: qtype, name: dns.Fqdn(name), rcode: -1, err: errNotAuthenticated}
	}
	return rrs, err
}

// isNXDOMAIN reports whether err is a lookup answered with NXDOMAIN.
func isNXDOMAIN(err error) bool {
	var de *dnsError
	return errors.As(err, &de) && de.err == nil && de.rcode == dns.RcodeNameError
}

// walkAnswer follows the CNAMEs from name through ans and returns the
// records of type qtype at the end of the chain, with the name they are at.
func walkAnswer(ans []dns.RR, name string, qtype uint16, hops *int) ([]dns.RR, string, error) {
	cur := name
	for {
		var found []dns.RR
		next := ""
		for _, rr := range ans {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			if h.Rrtype == qtype {
				found = append(found, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				next = dns.Fqdn(c.Target)
			}
		}
		if len(found) > 0 || next == "" {
			return found, cur, nil
		}
		*hops++
		if *hops > maxCNAMEHops {
			return nil, cur, errCNAMEChain
		}
		cur = next
	}
}

// exchange asks each server in turn and returns the first NOERROR or
// NXDOMAIN answer. Any other outcome (timeout, SERVFAIL, REFUSED, garbage)
// moves on to the next server; when none is left the last failure is
// returned as a *dnsError.
func (r *resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	last := &dnsError{qtype: qtype, name: name, rcode: -1, err: errors.New("no resolver tried")}
	for _, server := range r.servers {
		if err := ctx.Err(); err != nil {
			last.err = err
			break
		}
		resp, err := r.exchangeOne(ctx, server, name, qtype)
		if err != nil {
			last = &dnsError{qtype: qtype, name: name, server: server, rcode: -1, err: err}
			continue
		}
		if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
			return resp, nil
		}
		last = &dnsError{qtype: qtype, name: name, server: server, rcode: resp.Rcode}
	}
	return nil, last
}

// exchangeOne sends one query over UDP and repeats it over TCP when the
// answer is truncated.
func (r *resolver) exchangeOne(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	resp, err := r.query(ctx, "udp", server, name, qtype)
	if err == nil && resp.Truncated {
		resp, err = r.query(ctx, "tcp", server, name, qtype)
	}
	return resp, err
}

func (r *resolver) query(ctx context.Context, network, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype) // also sets RD
	// DO says we understand DNSSEC; AD in a query asks the resolver to
	// report validation in the AD bit of its answer (RFC 6840 §5.7).
	m.SetEdns0(ednsUDPSize, r.dnssec)
	m.AuthenticatedData = r.dnssec
	// Timeout bounds dial, write and read; ctx's deadline wins when sooner.
	c := &dns.Client{Net: network, Timeout: r.queryTimeout, UDPSize: ednsUDPSize}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || resp.Question[0].Qtype != qtype || !strings.EqualFold(resp.Question[0].Name, name) {
		return nil, errors.New("answer does not match the question")
	}
	return resp, nil
}
