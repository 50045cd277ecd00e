package loadgen

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DNSServer is the authoritative DNS the ACME server under load resolves
// through (its `resolvers`): one "host:port" serving UDP and TCP, so that a
// truncated UDP answer's TCP retry reaches it too. Every name has one A
// record (for http-01) and no AAAA; TXT records are what the dns-01 solver
// presents. It is safe for concurrent use.
type DNSServer struct {
	addr    string
	a       net.IP
	servers []*dns.Server

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN -> values
}

// StartDNS serves on addr ("127.0.0.1:0" picks a port free for both UDP
// and TCP) and answers every A query with a, which is where the http-01
// responder listens as the ACME server sees it.
func StartDNS(addr string, a net.IP) (*DNSServer, error) {
	if a.To4() == nil {
		return nil, fmt.Errorf("the A record %v is not an IPv4 address", a)
	}
	pc, ln, err := listenUDPAndTCP(addr)
	if err != nil {
		return nil, err
	}
	s := &DNSServer{addr: pc.LocalAddr().String(), a: a.To4(), txt: map[string][]string{}}
	s.servers = []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}}
	var started sync.WaitGroup
	for _, srv := range s.servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { _ = srv.ActivateAndServe() }()
	}
	started.Wait()
	return s, nil
}

// listenUDPAndTCP opens UDP and TCP on one port of host. With port 0 it
// tries a few kernel-chosen UDP ports until TCP is free on the same one.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("DNS address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("DNS over UDP: %w", err)
		}
		udpPort := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(udpPort)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("DNS over TCP on the UDP port: %w", lastErr)
}

// Addr is the "host:port" to give the ACME server as its resolver.
func (s *DNSServer) Addr() string { return s.addr }

// Close stops both listeners.
func (s *DNSServer) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown())
	}
	return errors.Join(errs...)
}

// AddTXT adds value to the TXT records of name.
func (s *DNSServer) AddTXT(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dnsKey(name)
	s.txt[k] = append(s.txt[k], value)
}

// RemoveTXT removes value from the TXT records of name.
func (s *DNSServer) RemoveTXT(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dnsKey(name)
	vs := s.txt[k]
	for i, v := range vs {
		if v == value {
			vs = append(vs[:i:i], vs[i+1:]...)
			break
		}
	}
	if len(vs) == 0 {
		delete(s.txt, k)
		return
	}
	s.txt[k] = vs
}

// dnsKey is how a name is kept: lower case, fully qualified.
func dnsKey(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// ServeDNS answers A with the configured address, TXT from the records
// presented, and anything else (AAAA, CAA, ...) with an empty NOERROR
// answer, so that CAA checks find no restriction.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET}
		switch q.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: s.a})
		case dns.TypeTXT:
			hdr.Rrtype = dns.TypeTXT
			s.mu.Lock()
			for _, v := range s.txt[dnsKey(q.Name)] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: splitTXT(v)})
			}
			s.mu.Unlock()
		}
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
