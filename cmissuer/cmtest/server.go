// Package cmtest is a strict, in-process Certificate Manager simulator for
// testing cmissuer and the gateway: it serves the wire shapes of
// cmissuer/wire.go over mutual TLS, checks the officer's roles, issues from
// its own root and intermediate, and fails on demand.
package cmtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BasePath is where the simulator serves the API, as Protocol Gateway does.
const BasePath = "/pgwy/api"

// DefaultProcedure and DefaultRole are what an empty Options gives.
const (
	DefaultProcedure = "ACME TLS Server"
	DefaultRole      = "acme-ro"
)

// Options configure a Server.
type Options struct {
	// Procedures are the token procedures CM knows. Default: only
	// DefaultProcedure, without approval.
	Procedures map[string]Procedure
	// RequiredRoRoles are the roles an officer certificate must all hold,
	// as OU values. Default: DefaultRole.
	RequiredRoRoles []string
	// Addr is the listen address. Default 127.0.0.1:0.
	Addr string
	// Validity of a certificate whose request has no notAfter. Default 90 days.
	Validity time.Duration
	// ErrorLog receives the HTTP server's errors, such as refused
	// handshakes. Default: discarded.
	ErrorLog *log.Logger
}

// Procedure is one token procedure.
type Procedure struct {
	// Approval holds each request (202) until Server.Approve.
	Approval bool
	// Domains, when set, are the DNS names (and their subdomains) the
	// procedure may issue for; others are refused with 403.
	Domains []string
}

// Counts is what the simulator was asked and did.
type Counts struct {
	Issued, Pending, Revoked int
	// Requests counts requests by route, e.g. "POST /certificates",
	// including those that failed on demand.
	Requests map[string]int
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	opts  Options
	hs    *http.Server
	url   string
	done  chan struct{}
	tlsCA *ca // signs CM's server certificate
	offCA *ca // signs officer certificates
	other *ca // an unrelated CA, for wrong officers
	root  *ca // the issuing hierarchy
	inter *ca

	mu      sync.Mutex
	records map[string]*record // by id
	serials map[string]string  // serial hex → id
	counts  Counts
	faults  faults
}

type faults struct {
	failN, failStatus int
	drops             int
	latency           time.Duration
	rejectCSR         bool
}

// Start starts a simulator; Close stops it.
func Start(opts Options) (*Server, error) {
	if opts.Procedures == nil {
		opts.Procedures = map[string]Procedure{DefaultProcedure: {}}
	}
	if opts.RequiredRoRoles == nil {
		opts.RequiredRoRoles = []string{DefaultRole}
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Validity <= 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	s := &Server{opts: opts, records: map[string]*record{}, serials: map[string]string{},
		counts: Counts{Requests: map[string]int{}}, done: make(chan struct{})}
	if err := s.makeCAs(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, err
	}
	srvCert, srvKey, err := s.tlsCA.serverCert(uniq("127.0.0.1", "::1", "localhost", host))
	if err != nil {
		return nil, err
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(s.offCA.cert)
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // hijacking needs HTTP/1.1
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw, s.tlsCA.cert.Raw}, PrivateKey: srvKey, Leaf: srvCert}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	s.url = "https://" + ln.Addr().String() + BasePath
	s.hs = &http.Server{Handler: s.routes(), ErrorLog: opts.ErrorLog, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(tls.NewListener(ln, tc))
	}()
	return s, nil
}

// New starts a simulator that t's cleanup stops.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("cmtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and drops its connections.
func (s *Server) Close() {
	_ = s.hs.Close()
	<-s.done
}

func (s *Server) makeCAs() error {
	var err error
	mk := func(cn string, parent *ca) *ca {
		if err != nil {
			return nil
		}
		var c *ca
		c, err = newCA(cn, parent)
		return c
	}
	s.tlsCA, s.offCA, s.other = mk("cmtest TLS root", nil), mk("cmtest officer CA", nil), mk("cmtest other CA", nil)
	s.root = mk("cmtest issuing root", nil)
	s.inter = mk("cmtest issuing intermediate", s.root)
	return err
}

// URL is the API base, e.g. https://127.0.0.1:43121/pgwy/api.
func (s *Server) URL() string { return s.url }

// RootsPEM is the root that CM's TLS server certificate chains to.
func (s *Server) RootsPEM() []byte { return certPEMOf(s.tlsCA.cert) }

// CAChainPEM is the issuing intermediate then root.
func (s *Server) CAChainPEM() []byte { return certPEMOf(s.inter.cert, s.root.cert) }

// IssuingRoot is the root that issued certificates chain to.
func (s *Server) IssuingRoot() *x509.Certificate { return s.root.cert }

// MintOfficer makes officer credentials from the officer CA holding roles,
// or the required roles when none are given.
func (s *Server) MintOfficer(roles ...string) (certPEM, keyPEM []byte, err error) {
	if len(roles) == 0 {
		roles = s.opts.RequiredRoRoles
	}
	return s.offCA.officer(roles)
}

// Officer is MintOfficer for tests.
func (s *Server) Officer(t testing.TB, roles ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := s.MintOfficer(roles...)
	if err != nil {
		t.Fatalf("cmtest: officer: %v", err)
	}
	return certPEM, keyPEM
}

// WrongOfficer mints credentials with the required roles from a CA the
// simulator does not trust: its TLS handshake fails.
func (s *Server) WrongOfficer(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := s.other.officer(s.opts.RequiredRoRoles)
	if err != nil {
		t.Fatalf("cmtest: officer: %v", err)
	}
	return certPEM, keyPEM
}

// FailNext answers the next n requests with status and a JSON message.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failN, s.faults.failStatus = n, status
}

// SetLatency delays every answer by d (0 turns it off).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// DropConnections closes the connection of the next n requests, after
// reading them and without answering.
func (s *Server) DropConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.drops = n
}

// RejectCSR makes issue requests fail with 400 about the PKCS#10.
func (s *Server) RejectCSR(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectCSR = reject
}

// Counts returns a copy of the counters.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.Requests = make(map[string]int, len(s.counts.Requests))
	for k, v := range s.counts.Requests {
		c.Requests[k] = v
	}
	return c
}

// Approve issues the pending request id.
func (s *Server) Approve(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[id]
	switch {
	case !ok:
		return fmt.Errorf("cmtest: no request %q", id)
	case rec.cert != nil:
		return errors.New("cmtest: request already issued")
	}
	return s.issueLocked(id, rec)
}

// PendingIDs lists the requests waiting for approval, in no order.
func (s *Server) PendingIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, rec := range s.records {
		if rec.cert == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// Revocation reports whether the certificate with serial (hex) is revoked
// and with which reason.
func (s *Server) Revocation(serialHex string) (reason int, revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[s.serials[normSerial(serialHex)]]
	if !ok || !rec.revoked {
		return 0, false
	}
	return rec.reason, true
}

// uniq sorts xs and drops repeats and empty strings.
func uniq(xs ...string) []string {
	xs = slices.DeleteFunc(xs, func(x string) bool { return x == "" })
	slices.Sort(xs)
	return slices.Compact(xs)
}
