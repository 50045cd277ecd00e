package testsrv

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Zone is a dns.Handler that answers as the authority for every name: A
// with one IPv4 address (where the http-01 responder listens as the ACME
// server sees it) and no AAAA, TXT and CAA from the records set, and
// anything else with an empty NOERROR answer, so that without CAA records
// CAA checks find no restriction. It is safe for concurrent use.
type Zone struct {
	a net.IP

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN -> values
	caa map[string][]string // lower-case FQDN -> issue values
}

// NewZone returns a zone that resolves every name to a, an IPv4 address.
func NewZone(a net.IP) (*Zone, error) {
	if a.To4() == nil {
		return nil, fmt.Errorf("the A record %v is not an IPv4 address", a)
	}
	return &Zone{a: a.To4(), txt: map[string][]string{}, caa: map[string][]string{}}, nil
}

// AddTXT adds value to the TXT records of name.
func (z *Zone) AddTXT(name, value string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := nameKey(name)
	z.txt[k] = append(z.txt[k], value)
}

// RemoveTXT removes value from the TXT records of name.
func (z *Zone) RemoveTXT(name, value string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := nameKey(name)
	vs := z.txt[k]
	for i, v := range vs {
		if v == value {
			vs = append(vs[:i:i], vs[i+1:]...)
			break
		}
	}
	if len(vs) == 0 {
		delete(z.txt, k)
		return
	}
	z.txt[k] = vs
}

// SetTXT makes values the TXT records of name, replacing earlier ones.
func (z *Zone) SetTXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[nameKey(name)] = append([]string(nil), values...)
}

// ClearTXT removes the TXT records of name.
func (z *Zone) ClearTXT(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.txt, nameKey(name))
}

// TXTRecords returns how many TXT records are set, of all names.
func (z *Zone) TXTRecords() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := 0
	for _, vs := range z.txt {
		n += len(vs)
	}
	return n
}

// SetCAA makes `0 issue "<value>"` for each value the CAA records of name.
func (z *Zone) SetCAA(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.caa[nameKey(name)] = append([]string(nil), values...)
}

// nameKey is how a name is kept: lower case, fully qualified.
func nameKey(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// ServeDNS implements dns.Handler.
func (z *Zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET}
		z.mu.Lock()
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: z.a})
		case dns.TypeTXT:
			for _, v := range z.txt[nameKey(q.Name)] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: splitTXT(v)})
			}
		case dns.TypeCAA:
			for _, v := range z.caa[nameKey(q.Name)] {
				m.Answer = append(m.Answer, &dns.CAA{Hdr: hdr, Flag: 0, Tag: "issue", Value: v})
			}
		}
		z.mu.Unlock()
	}
	_ = w.WriteMsg(m)
}

// splitTXT cuts a value into the 255-byte strings a TXT record holds.
func splitTXT(v string) []string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, v[:255])
		v = v[255:]
	}
	return append(parts, v)
}

// ZoneDNS is a Zone served by DNS.
type ZoneDNS struct {
	*Zone
	*DNS
}

// StartZoneDNS serves on addr (see ServeDNS) a zone that resolves every
// name to a (see NewZone).
func StartZoneDNS(addr string, a net.IP) (*ZoneDNS, error) {
	z, err := NewZone(a)
	if err != nil {
		return nil, err
	}
	d, err := ServeDNS(addr, z)
	if err != nil {
		return nil, err
	}
	return &ZoneDNS{Zone: z, DNS: d}, nil
}
