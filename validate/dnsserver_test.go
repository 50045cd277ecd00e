package validate

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// testDNS is an authoritative-style DNS server on 127.0.0.1, listening on
// UDP and TCP on the same random port, answering from a zone the test
// controls. Names not in the zone get NXDOMAIN.
type testDNS struct {
	addr string

	mu      sync.Mutex
	records map[string][]dns.RR // lower-case FQDN -> records
	behave  map[string]behaviour
	chase   bool // follow CNAMEs inside the zone, as a recursive resolver does
	ad      bool // set the AD bit, as a validating resolver does for a signed zone
	queries map[string]int
	last    *dns.Msg

	stop chan struct{} // closed first on cleanup so delayed answers end
}

// behaviour overrides the normal answer for one name.
type behaviour struct {
	rcode       int           // answer with this rcode and nothing else
	truncateUDP bool          // answer UDP with TC set and no records
	delay       time.Duration // wait this long before answering
	noAD        bool          // leave the AD bit clear even when ad is set
}

// newTestDNS starts a server with records in zone-file syntax, e.g.
// `a.test. 60 IN A 127.0.0.1`.
func newTestDNS(t *testing.T, records ...string) *testDNS {
	t.Helper()
	s := &testDNS{
		records: map[string][]dns.RR{},
		behave:  map[string]behaviour{},
		queries: map[string]int{},
		stop:    make(chan struct{}),
	}
	for _, r := range records {
		s.add(t, r)
	}

	srv, err := testsrv.ServeDNS("127.0.0.1:0", s)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = srv.Addr()
	t.Cleanup(func() {
		close(s.stop)
		_ = srv.Close()
	})
	return s
}

func (s *testDNS) add(t *testing.T, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatalf("bad test record %q: %v", record, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	s.records[name] = append(s.records[name], rr)
}

func (s *testDNS) setBehaviour(name string, b behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behave[strings.ToLower(dns.Fqdn(name))] = b
}

func (s *testDNS) setAD(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ad = on
}

func (s *testDNS) setChase(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chase = on
}

// count returns how many queries arrived over network ("udp" or "tcp").
func (s *testDNS) count(network string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[network]
}

func (s *testDNS) lastQuery() *dns.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	network := w.RemoteAddr().Network()
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	s.mu.Lock()
	s.queries[network]++
	s.last = req.Copy()
	b := s.behave[name]
	ad := s.ad && !b.noAD
	s.mu.Unlock()

	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-s.stop:
			return
		}
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.AuthenticatedData = ad
	switch {
	case b.rcode != 0:
		resp.Rcode = b.rcode
	case b.truncateUDP && network == "udp":
		resp.Truncated = true
	default:
		resp.Answer, resp.Rcode = s.answer(name, q.Qtype)
		if network == "udp" {
			// As real servers do: fit the client's EDNS0 size, else set TC.
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			resp.Truncate(size)
		}
	}
	_ = w.WriteMsg(resp)
}

// answer returns the records of qtype at name, and the CNAME there if any;
// with chase set it follows that CNAME inside the zone (bounded).
func (s *testDNS) answer(name string, qtype uint16) ([]dns.RR, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ans []dns.RR
	for range 20 {
		rrs, ok := s.records[name]
		if !ok {
			return ans, dns.RcodeNameError
		}
		next := ""
		for _, rr := range rrs {
			if rr.Header().Rrtype == qtype {
				ans = append(ans, rr)
			} else if c, isCNAME := rr.(*dns.CNAME); isCNAME {
				ans = append(ans, rr)
				next = strings.ToLower(c.Target)
			}
		}
		if next == "" || !s.chase {
			break
		}
		name = next
	}
	return ans, dns.RcodeSuccess
}

// closedUDPPort returns a loopback address where nothing listens: queries
// there fail at once with "connection refused".
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}
