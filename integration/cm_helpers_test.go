package integration

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// cmIssuer describes the `issuer cm` block of a gateway.
type cmIssuer struct {
	// Procedures are the token procedures named in the block, each at
	// the simulator's endpoint for it. Default: cmtest.DefaultProcedure.
	Procedures []string
	// URL replaces the endpoint of the first procedure (a proxy).
	URL string
	// Signing is the block's signing mode; empty leaves the default.
	Signing string
	// CertPEM and KeyPEM are the officer's; default: srv.Officer.
	CertPEM, KeyPEM []byte
	// Extra lines inside the block (timeout, pending_deadline).
	Extra string
}

// block writes the officer credentials, CM's TLS roots and the issuing
// chain to files and returns the `issuer cm { ... }` subdirective.
func (ci cmIssuer) block(t testing.TB, srv *cmtest.Server) string {
	t.Helper()
	if len(ci.Procedures) == 0 {
		ci.Procedures = []string{cmtest.DefaultProcedure}
	}
	if ci.CertPEM == nil {
		ci.CertPEM, ci.KeyPEM = srv.Officer(t)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var b strings.Builder
	b.WriteString("issuer cm {\n")
	for i, name := range ci.Procedures {
		u := srv.ProcedureURL(name)
		if i == 0 && ci.URL != "" {
			u = ci.URL
		}
		fmt.Fprintf(&b, "\tprocedure %q %s\n", name, u)
	}
	fmt.Fprintf(&b, "\tclient_certificate %s %s\n", write("officer.crt", ci.CertPEM), write("officer.key", ci.KeyPEM))
	if ci.Signing != "" {
		fmt.Fprintf(&b, "\tsigning %s\n", ci.Signing)
	}
	fmt.Fprintf(&b, "\tchain %s\n", write("cm-ca-chain.pem", srv.CAChainPEM()))
	fmt.Fprintf(&b, "\ttrusted_roots %s\n", write("cm-roots.pem", srv.RootsPEM()))
	fmt.Fprintf(&b, "\t%s\n}", ci.Extra)
	return b.String()
}

// cmAuthorized starts a gateway issuing through CM as ci says, with an
// acmez client, its account, and an order for name whose authorization
// it has validated (http-01).
func cmAuthorized(t *testing.T, srv *cmtest.Server, ci cmIssuer, name string) (*acmeEnv, *acmez.Client, acme.Account, acme.Order) {
	t.Helper()
	e := startCMEnv(t, srv, ci)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)
	return e, c, acct, acmezAuthorize(t, e, c, acct, name)
}

// startCMEnv starts a gateway with in-memory storage issuing through CM as
// ci says, with the DNS server and http-01 responder of an acmeEnv.
func startCMEnv(t testing.TB, srv *cmtest.Server, ci cmIssuer) *acmeEnv {
	t.Helper()
	return startACMEEnvWith(t, ci.block(t, srv))
}

// cmOrderDoc is an order resource as the gateway writes it.
type cmOrderDoc struct {
	Status      string `json:"status"`
	Certificate string `json:"certificate"`
	Error       *struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	} `json:"error"`
}

func (d cmOrderDoc) problemType() string {
	if d.Error == nil {
		return ""
	}
	return d.Error.Type
}

func cmDecodeOrder(t testing.TB, what string, resp rawResponse) cmOrderDoc {
	t.Helper()
	if resp.Status != 200 {
		t.Fatalf("%s: HTTP %d %s", what, resp.Status, resp.Body)
	}
	var d cmOrderDoc
	if err := json.Unmarshal(resp.Body, &d); err != nil {
		t.Fatalf("%s: %v: %s", what, err, resp.Body)
	}
	return d
}

// cmFinalize sends one finalize request for order with a CSR for names,
// without polling, and returns the answer and the order it carries.
func cmFinalize(t testing.TB, g *gateway, acct acme.Account, order acme.Order, names ...string) (rawResponse, cmOrderDoc) {
	t.Helper()
	csr, err := acmez.NewCSR(newKey(t), names)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]string{"csr": base64.RawURLEncoding.EncodeToString(csr.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	resp := postJWS(t, g, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, order.Finalize, payload)
	return resp, cmDecodeOrder(t, "finalize", resp)
}

// cmReadOrder reads an order with a signed POST-as-GET.
func cmReadOrder(t testing.TB, g *gateway, acct acme.Account, orderURL string) (rawResponse, cmOrderDoc) {
	t.Helper()
	resp := postJWS(t, g, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, orderURL, nil)
	return resp, cmDecodeOrder(t, "reading order", resp)
}

// cmWantProcessing fails unless the answer is a processing order with a
// Retry-After header.
func cmWantProcessing(t testing.TB, what string, resp rawResponse, d cmOrderDoc) {
	t.Helper()
	if d.Status != acme.StatusProcessing {
		t.Fatalf("%s: order is %q (%s), want processing", what, d.Status, resp.Body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: processing order without Retry-After", what)
	}
}

// cmPollOrder reads the order every 250ms, as a client told Retry-After
// would, until it leaves processing or within passes; it fails the test
// then.
func cmPollOrder(t testing.TB, g *gateway, acct acme.Account, orderURL string, within time.Duration) cmOrderDoc {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, d := cmReadOrder(t, g, acct, orderURL)
		if d.Status != acme.StatusProcessing {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still processing after %v: %s", within, resp.Body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// cmWaitFor polls cond every 50ms for at most within.
func cmWaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmFetchChain downloads an order's certificate chain with POST-as-GET.
func cmFetchChain(t testing.TB, g *gateway, acct acme.Account, certURL string) []*x509.Certificate {
	t.Helper()
	resp := postJWS(t, g, acct.PrivateKey.(*ecdsa.PrivateKey), acct.Location, certURL, nil)
	if resp.Status != 200 {
		t.Fatalf("downloading certificate: HTTP %d %s", resp.Status, resp.Body)
	}
	return parseChain(t, resp.Body)
}

// checkCMChain verifies that chain, leaf first, leads to the simulator's
// issuing root for server auth, and not to the gateway's local CA, and that
// the leaf names exactly names. It returns the leaf.
func checkCMChain(t testing.TB, srv *cmtest.Server, g *gateway, chain []*x509.Certificate, names ...string) *x509.Certificate {
	t.Helper()
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.IssuingRoot())
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Fatalf("certificate does not verify against CM's root for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: g.Roots, Intermediates: inter}); err == nil {
		t.Fatal("certificate verifies against the gateway's local CA: the local issuer signed it")
	}
	got := slices.Sorted(slices.Values(leaf.DNSNames))
	if want := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Fatalf("certificate names %v, want %v", got, want)
	}
	return leaf
}

// cmWantCounts fails unless CM issued issued certificates and was sent
// signed issue requests that it carried out: one for each order,
// never two.
// cmWantInvalid fails t unless order d is invalid with the ACME problem
// urn:ietf:params:acme:error:<problem>.
func cmWantInvalid(t testing.TB, d cmOrderDoc, problem string) {
	t.Helper()
	if d.Status != acme.StatusInvalid || d.problemType() != "urn:ietf:params:acme:error:"+problem {
		t.Fatalf("order is %q with problem %q, want invalid with %s", d.Status, d.problemType(), problem)
	}
}

func cmWantCounts(t testing.TB, srv *cmtest.Server, issued, signed int) cmtest.Counts {
	t.Helper()
	c := srv.Counts()
	if c.Issued != issued || c.SignedIssues != signed {
		t.Fatalf("CM issued %d certificates from %d signed issue requests, want %d from %d (counts %+v)",
			c.Issued, c.SignedIssues, issued, signed, c)
	}
	return c
}

// cmSwitchProxy forwards TCP connections to a target, or, while down,
// closes them at once: to a client, CM is unreachable before any byte of
// a request is sent.
type cmSwitchProxy struct {
	ln      net.Listener
	target  string
	down    atomic.Bool
	refused atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startCMSwitchProxy(t testing.TB, target string) *cmSwitchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cmSwitchProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *cmSwitchProxy) Addr() string { return p.ln.Addr().String() }

// SetDown switches the proxy; going down also cuts open connections.
func (p *cmSwitchProxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.closeAll()
	}
}

func (p *cmSwitchProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *cmSwitchProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *cmSwitchProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			p.refused.Add(1)
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *cmSwitchProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.track(c, true)
	p.track(up, true)
	defer func() {
		p.track(c, false)
		p.track(up, false)
		_ = c.Close()
		_ = up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
