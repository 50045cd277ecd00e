// Package cmtest is an in-process Certificate Manager simulator for testing
// cm and the gateway. It serves Protocol Gateway's REST API over
// mutual TLS, strictly where CM's contract is documented or seen in a
// working client (the shapes of cm/wire.go marked [D] and [P]) and
// leniently where it is not: each token procedure at its own endpoint,
// multipart PKCS#10 issuance, the caller-signing challenge with single-use
// data to sign and CMS verification against the officer CA, VRO signing,
// DER or PKCS#7 answers, search, and signed revocation. It issues from its
// own root and intermediate, and fails on demand.
package cmtest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BasePath is where the simulator serves DefaultProcedure, as Protocol
// Gateway's API is commonly deployed; another procedure is served at
// /pgwy/<slug>/api (see ProcedureURL).
const BasePath = "/pgwy/api"

// DefaultProcedure and DefaultRole are what an empty Options gives.
const (
	DefaultProcedure = "ACME TLS Server"
	DefaultRole      = "acme-ro"
)

// Routes, the keys of Counts.Requests: one per route of the API the
// simulator serves, whichever procedure's endpoint received the request.
const (
	RouteIssue  = "POST /certificates/pkcs10"
	RouteSearch = "GET /certificates"
	RouteRevoke = "POST /certificates/revoke"
)

// Options configure a Server.
type Options struct {
	// Procedures are the token procedures CM knows, each served at its own
	// endpoint. Default: only DefaultProcedure.
	Procedures map[string]Procedure
	// RequiredRoRoles are the roles an officer certificate must all hold,
	// as OU values. Default: DefaultRole.
	RequiredRoRoles []string
	// Addr is the listen address. Default 127.0.0.1:0.
	Addr string
	// Validity of the certificates issued. Default 90 days.
	Validity time.Duration
	// ErrorLog receives the HTTP server's errors, such as refused
	// handshakes. Default: discarded.
	ErrorLog *log.Logger
}

// Procedure is one token procedure, served by its own PGWY handler.
type Procedure struct {
	// VRO makes PGWY sign writes itself (virtual registration officer):
	// no dataToSign challenge, the first request is carried out.
	VRO bool
	// Domains, when set, are the DNS names (and their subdomains) the
	// procedure may issue for; others are refused with 403.
	Domains []string
	// PKCS7 answers an issue request with PKCS#7 (the leaf and the
	// intermediate) even when the caller accepts application/pkix-cert.
	PKCS7 bool
}

// Counts is what the simulator was asked and did.
type Counts struct {
	Issued, Revoked int
	// Challenges counts the dataToSign answers.
	Challenges int
	// SignedWrites counts the writes accepted as signed: with caller
	// signing those carrying a valid signature, with VRO those PGWY signs
	// itself. SignedIssues counts those of them that were issue requests.
	SignedWrites, SignedIssues int
	// Requests counts requests by route (RouteIssue, ...), including
	// those that failed on demand.
	Requests map[string]int
	// IssuedBy counts certificates by token procedure.
	IssuedBy map[string]int
}

// SignedFault fails the next N writes that CM would carry out: the signed
// resend in caller signing, the first request with VRO. Status 0 drops the
// connection without an answer, else the answer has Status. AfterWrite
// carries the write out first (the certificate is issued, the revocation
// recorded), so that only the answer is lost.
type SignedFault struct {
	N          int
	Status     int
	AfterWrite bool
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	hs     *http.Server
	origin string            // https://host:port
	paths  map[string]string // procedure → base path
	done   chan struct{}
	tlsCA  *ca // signs CM's server certificate
	offCA  *ca // signs officer certificates
	other  *ca // an unrelated CA, for wrong officers
	root   *ca // the issuing hierarchy
	inter  *ca

	mu         sync.Mutex
	certs      []*issued            // in issue order
	bySerial   map[string]*issued   // SerialHex → certificate
	challenges map[string]challenge // dataToSign → what it was asked for
	signatures [][]byte
	counts     Counts
	faults     faults
}

type faults struct {
	failN, failStatus int
	drops             int
	latency           time.Duration
	rejectCSR         bool
	signed            SignedFault
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
	s := &Server{opts: opts, paths: map[string]string{}, bySerial: map[string]*issued{},
		challenges: map[string]challenge{}, done: make(chan struct{}),
		counts: Counts{Requests: map[string]int{}, IssuedBy: map[string]int{}}}
	taken := map[string]string{}
	for name := range opts.Procedures {
		p := procedurePath(name)
		if other, ok := taken[p]; ok {
			return nil, fmt.Errorf("cmtest: procedures %q and %q share the endpoint %s", name, other, p)
		}
		taken[p], s.paths[name] = name, p
	}
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
	s.origin = "https://" + ln.Addr().String()
	s.hs = &http.Server{Handler: s.routes(), ErrorLog: opts.ErrorLog, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(tls.NewListener(ln, tc))
	}()
	return s, nil
}

// procedurePath is the base path of a procedure's endpoint: BasePath for
// DefaultProcedure, else /pgwy/<name in lower case, words joined by
// hyphens>/api.
func procedurePath(name string) string {
	if name == DefaultProcedure {
		return BasePath
	}
	slug := strings.Join(strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	}), "-")
	return "/pgwy/" + slug + "/api"
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

// URL is DefaultProcedure's endpoint, e.g. https://127.0.0.1:43121/pgwy/api.
func (s *Server) URL() string { return s.origin + BasePath }

// ProcedureURL is the endpoint of the named procedure, "" when the
// simulator does not know it.
func (s *Server) ProcedureURL(name string) string {
	p, ok := s.paths[name]
	if !ok {
		return ""
	}
	return s.origin + p
}

// RootsPEM is the root that CM's TLS server certificate chains to.
func (s *Server) RootsPEM() []byte { return certPEMOf(s.tlsCA.cert) }

// OfficerCAPEM is the CA of officer certificates, for TLS and signatures.
func (s *Server) OfficerCAPEM() []byte { return certPEMOf(s.offCA.cert) }

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
// simulator does not trust: its TLS handshake fails, and its signatures do
// not verify.
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
	s.setFaults(func(f *faults) { f.failN, f.failStatus = n, status })
}

// SetLatency delays every answer by d (0 turns it off).
func (s *Server) SetLatency(d time.Duration) { s.setFaults(func(f *faults) { f.latency = d }) }

// DropConnections closes the connection of the next n requests, after
// reading them and without answering.
func (s *Server) DropConnections(n int) { s.setFaults(func(f *faults) { f.drops = n }) }

// RejectCSR makes issue requests fail with 400 about the PKCS#10.
func (s *Server) RejectCSR(reject bool) { s.setFaults(func(f *faults) { f.rejectCSR = reject }) }

// FaultSigned fails the next f.N writes that CM would carry out.
func (s *Server) FaultSigned(sf SignedFault) { s.setFaults(func(f *faults) { f.signed = sf }) }

// setFaults changes the faults on demand under the lock.
func (s *Server) setFaults(change func(*faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.faults)
}

// Counts returns a copy of the counters.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.Requests, c.IssuedBy = maps.Clone(s.counts.Requests), maps.Clone(s.counts.IssuedBy)
	return c
}

// Signatures are the DER CMS signatures accepted, in order.
func (s *Server) Signatures() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.signatures)
}

// Revocation reports whether the certificate with serial (hex) is revoked
// and with which reason.
func (s *Server) Revocation(serialHex string) (reason int, revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.bySerial[normSerial(serialHex)]
	if !ok || !c.revoked {
		return 0, false
	}
	return c.reason, true
}

// uniq sorts xs and drops repeats and empty strings.
func uniq(xs ...string) []string {
	xs = slices.DeleteFunc(xs, func(x string) bool { return x == "" })
	slices.Sort(xs)
	return slices.Compact(xs)
}
