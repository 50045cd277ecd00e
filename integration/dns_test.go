package integration

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is a DNS server on 127.0.0.1 (UDP and TCP on one port) for the
// gateway's validation lookups: every name has the A record 127.0.0.1 and
// no AAAA, and TXT records are what the test sets.
type testDNS struct {
	addr string

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN -> values
}

// startDNS starts a server that is shut down when the test ends.
func startDNS(t testing.TB) *testDNS {
	t.Helper()
	s := &testDNS{txt: map[string][]string{}}
	s.addr = serveDNS(t, s)
	return s
}

// serveDNS serves h over UDP and TCP on one loopback port until the test
// ends, and returns its "host:port".
func serveDNS(t testing.TB, h dns.Handler) string {
	t.Helper()
	pc, ln := listenUDPAndTCP(t)
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	var started sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { _ = srv.ActivateAndServe() }()
	}
	started.Wait()
	t.Cleanup(func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	})
	return pc.LocalAddr().String()
}

// listenUDPAndTCP opens UDP and TCP on one free loopback port, so that one
// "host:port" resolver serves both a UDP query and its TCP retry.
func listenUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// Addr is the server's "host:port", for the gateway's resolvers.
func (s *testDNS) Addr() string { return s.addr }

// SetTXT makes values the TXT records of name, replacing earlier ones.
func (s *testDNS) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[txtKey(name)] = append([]string(nil), values...)
}

// ClearTXT removes the TXT records of name.
func (s *testDNS) ClearTXT(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.txt, txtKey(name))
}

// txtKey is how a name is kept: lower case, fully qualified.
func txtKey(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// ServeDNS answers A with 127.0.0.1 for every name, TXT from the records
// set, and anything else with an empty NOERROR answer.
func (s *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			hdr.Rrtype = dns.TypeTXT
			s.mu.Lock()
			for _, v := range s.txt[txtKey(q.Name)] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
			}
			s.mu.Unlock()
		}
	}
	_ = w.WriteMsg(m)
}
