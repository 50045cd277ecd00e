package testsrv

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func startTestDNS(t *testing.T, a net.IP) *ZoneDNS {
	t.Helper()
	s, err := StartZoneDNS("127.0.0.1:0", a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// query asks s over net ("udp" or "tcp") and returns the answer.
func query(t *testing.T, s *ZoneDNS, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network}
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s query %s: %v", network, name, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("%s query %s: rcode %s", network, name, dns.RcodeToString[r.Rcode])
	}
	return r
}

func txtValues(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out
}

func TestDNS_AnswersEveryNameWithTheARecordOverUDPAndTCP(t *testing.T) {
	s := startTestDNS(t, net.IPv4(127, 0, 0, 2))
	for _, network := range []string{"udp", "tcp"} {
		r := query(t, s, network, "w3-17.load.example.com", dns.TypeA)
		if len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(net.IPv4(127, 0, 0, 2)) {
			t.Errorf("%s: A answer %v, want 127.0.0.2", network, r.Answer)
		}
		if !r.Authoritative {
			t.Errorf("%s: answer not authoritative", network)
		}
	}
}

func TestDNS_AnswersOtherTypesEmpty(t *testing.T) {
	s := startTestDNS(t, net.IPv4(127, 0, 0, 1))
	for _, qtype := range []uint16{dns.TypeAAAA, dns.TypeCAA} {
		if r := query(t, s, "udp", "load.example.com", qtype); len(r.Answer) != 0 {
			t.Errorf("%s answer %v, want none", dns.TypeToString[qtype], r.Answer)
		}
	}
}

func TestDNS_ServesTXTRecordsPresented(t *testing.T) {
	s := startTestDNS(t, net.IPv4(127, 0, 0, 1))
	const name = "_acme-challenge.W1-1.load.example.com"
	long := strings.Repeat("x", 300)
	s.AddTXT(name, "first")
	s.AddTXT(name, long)

	// Names are case-insensitive, and a value over 255 bytes comes back
	// whole from its strings.
	got := txtValues(query(t, s, "tcp", strings.ToLower(name), dns.TypeTXT))
	if want := []string{"first", long}; !slices.Equal(got, want) {
		t.Errorf("TXT %q, want %q", got, want)
	}

	s.RemoveTXT(name, "first")
	if got := txtValues(query(t, s, "udp", name, dns.TypeTXT)); !slices.Equal(got, []string{long}) {
		t.Errorf("after removing one: TXT %q", got)
	}
	s.RemoveTXT(name, long)
	if got := txtValues(query(t, s, "udp", name, dns.TypeTXT)); len(got) != 0 {
		t.Errorf("after removing all: TXT %q", got)
	}
}

func TestStartZoneDNS_RefusesIPv6ARecord(t *testing.T) {
	if _, err := StartZoneDNS("127.0.0.1:0", net.ParseIP("::1")); err == nil {
		t.Fatal("StartZoneDNS accepted an IPv6 address for the A record")
	}
}

func TestDNS_SetTXTReplacesAndSetCAAAnswersIssueRecords(t *testing.T) {
	s := startTestDNS(t, net.IPv4(127, 0, 0, 1))
	const name = "_acme-challenge.example.com"
	s.AddTXT(name, "old")
	s.SetTXT(name, "a", "b")
	if got := txtValues(query(t, s, "udp", name, dns.TypeTXT)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after SetTXT: TXT %q", got)
	}
	if n := s.TXTRecords(); n != 2 {
		t.Errorf("TXTRecords() = %d, want 2", n)
	}
	s.ClearTXT(strings.ToUpper(name))
	if got := txtValues(query(t, s, "udp", name, dns.TypeTXT)); len(got) != 0 {
		t.Errorf("after ClearTXT: TXT %q", got)
	}

	s.SetCAA("Example.com", "ca.example.net")
	r := query(t, s, "tcp", "example.com", dns.TypeCAA)
	if len(r.Answer) != 1 {
		t.Fatalf("CAA answer %v, want one record", r.Answer)
	}
	if caa := r.Answer[0].(*dns.CAA); caa.Flag != 0 || caa.Tag != "issue" || caa.Value != "ca.example.net" {
		t.Errorf("CAA %v", caa)
	}
}
