// Package testsrv holds the servers that stand in for the world when an
// ACME server validates challenges in tests and load runs: an
// authoritative DNS server and an http-01 responder. They are real servers
// on real sockets, typically on loopback with ports picked free ("…:0").
// The package knows nothing of Caddy.
package testsrv

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/miekg/dns"
)

// DNS serves one dns.Handler over UDP and TCP on one "host:port", so that
// a truncated UDP answer's TCP retry reaches the same server.
type DNS struct {
	addr    string
	servers []*dns.Server
}

// ServeDNS serves h on addr ("127.0.0.1:0" picks a port free for both UDP
// and TCP) and returns once both listeners serve.
func ServeDNS(addr string, h dns.Handler) (*DNS, error) {
	pc, ln, err := ListenUDPAndTCP(addr)
	if err != nil {
		return nil, err
	}
	d := &DNS{addr: pc.LocalAddr().String()}
	d.servers = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	var started sync.WaitGroup
	for _, srv := range d.servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { _ = srv.ActivateAndServe() }()
	}
	started.Wait()
	return d, nil
}

// Addr is the "host:port" to give the ACME server as its resolver.
func (d *DNS) Addr() string { return d.addr }

// Close stops both listeners.
func (d *DNS) Close() error {
	var errs []error
	for _, srv := range d.servers {
		errs = append(errs, srv.Shutdown())
	}
	return errors.Join(errs...)
}

// ListenUDPAndTCP opens UDP and TCP on one port of host. With port 0 it
// tries a few kernel-chosen UDP ports until TCP is free on the same one.
func ListenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
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
