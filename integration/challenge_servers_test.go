package integration

import (
	"net"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// startDNS starts a DNS server on 127.0.0.1 (UDP and TCP on one port) for
// the gateway's validation lookups, shut down when the test ends: every
// name has the A record 127.0.0.1 and no AAAA, and TXT and CAA records are
// what the test sets.
func startDNS(t testing.TB) *testsrv.ZoneDNS {
	t.Helper()
	s, err := testsrv.StartZoneDNS("127.0.0.1:0", net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startHTTP01 starts an http-01 responder on 127.0.0.1, shut down when the
// test ends; its Port is the gateway's http_port.
func startHTTP01(t testing.TB) *testsrv.HTTP01 {
	t.Helper()
	s, err := testsrv.StartHTTP01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
