package caddyacmegw

// Tests for validation to a public CA's standard: ip identifiers (RFC 8738),
// tls-alpn-01, CAA after validation and again at finalize, validation
// attempts, the per-account validation cap, and the network lists.

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

// recordingValidator records every call. The first failFirst challenge
// validations fail; CAA answers caa.
type recordingValidator struct {
	mu        sync.Mutex
	calls     []validatorCall
	failFirst int
	caa       error
}

type validatorCall struct{ method, ident, keyAuth string }

const methodCAA = "caa"

func (v *recordingValidator) challenge(method, ident, keyAuth string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, validatorCall{method, ident, keyAuth})
	if v.failFirst > 0 {
		v.failFirst--
		return &validate.Error{Kind: validate.KindConnection, Detail: "this try fails"}
	}
	return nil
}

func (v *recordingValidator) HTTP01(_ context.Context, domain, _, keyAuth string) error {
	return v.challenge(challengeHTTP01, domain, keyAuth)
}

func (v *recordingValidator) DNS01(_ context.Context, domain, keyAuth string) error {
	return v.challenge(challengeDNS01, domain, keyAuth)
}

func (v *recordingValidator) TLSALPN01(_ context.Context, ident, keyAuth string) error {
	return v.challenge(challengeTLSALPN01, ident, keyAuth)
}

func (v *recordingValidator) CAA(_ context.Context, name string, _ bool, _, method string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, validatorCall{method: methodCAA, ident: name, keyAuth: method})
	return v.caa
}

func (v *recordingValidator) setCAA(err error) {
	v.mu.Lock()
	v.caa = err
	v.mu.Unlock()
}

// count is the number of calls of method.
func (v *recordingValidator) count(method string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.calls {
		if c.method == method {
			n++
		}
	}
	return n
}

func (v *recordingValidator) callsOf(method string) []validatorCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []validatorCall
	for _, c := range v.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

func caaRefusal() error {
	return &validate.Error{Kind: validate.KindCAA, Detail: "CAA forbids this CA"}
}

// sanIssuer is the harness's testIssuer, also certifying the order's
// addresses: testIssuer sets only DNSNames, so an ip order issued by it
// fails matchesOrder.
type sanIssuer struct{ *testIssuer }

func (si sanIssuer) Issue(_ context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	ti := si.testIssuer
	ti.mu.Lock()
	defer ti.mu.Unlock()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		DNSNames:     req.Names,
		IPAddresses:  netIPs(req.IPAddresses),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ti.caCert, req.CSR.PublicKey, ti.caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ti.issued++
	return []*x509.Certificate{leaf, ti.caCert}, nil
}

var testAllowIP = []string{"192.0.2.0/24", "2001:db8::/32"}

// allowTestIPs configures allow_ip as Provision would.
func allowTestIPs(t *testing.T, h *Handler) {
	t.Helper()
	h.AllowIP = testAllowIP
	var err error
	if h.allowIP, err = parsePrefixes(h.AllowIP); err != nil {
		t.Fatal(err)
	}
}

// newIPGateway is a gateway that accepts ip identifiers in testAllowIP and
// issues IP SANs.
func newIPGateway(t *testing.T, challenges ...string) *gateway {
	g := newGateway(t)
	allowTestIPs(t, g.h)
	if len(challenges) > 0 {
		g.h.Challenges = challenges
	}
	g.h.issuer = sanIssuer{g.issuer}
	return g
}

func ipIDs(addrs ...string) []identifier {
	ids := make([]identifier, len(addrs))
	for i, a := range addrs {
		ids[i] = identifier{Type: "ip", Value: a}
	}
	return ids
}

func (c *client) newOrderIDs(ids []identifier) (string, orderBody) {
	t := c.g.t
	t.Helper()
	r := c.post(c.g.base+pathNewOrder, map[string]any{"identifiers": ids})
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder %v: %d %s", ids, r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	return r.header.Get("Location"), o
}

// readyOrderIDs creates an order for ids and solves each authorization with
// the challenge of type typ.
func (c *client) readyOrderIDs(typ string, ids []identifier) (string, orderBody) {
	t := c.g.t
	t.Helper()
	url, o := c.newOrderIDs(ids)
	for _, az := range o.Authorizations {
		a := c.readAuthz(az)
		if a.Status == storage.StatusValid {
			continue
		}
		c.post(challengeOfType(t, a, typ).URL, map[string]any{})
		c.waitAuthz(az, storage.StatusValid)
	}
	o, _ = c.readOrder(url)
	if o.Status != storage.StatusReady {
		t.Fatalf("order is %s, want ready", o.Status)
	}
	return url, o
}

// sanCSR makes a CSR with the given DNS names and addresses.
func sanCSR(t *testing.T, key crypto.Signer, cn string, names []string, addrs ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: names}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			t.Fatalf("bad test address %q", a)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func challengeTypes(a authzBody) []string {
	var types []string
	for _, ch := range a.Challenges {
		types = append(types, ch.Type)
	}
	return types
}

func addrSet(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap().String())
		}
	}
	slices.Sort(out)
	return out
}

func TestIP_OrderOffersHTTP01AndTLSALPN01ButNeverDNS01(t *testing.T) {
	tests := []struct {
		name       string
		challenges []string
		want       []string
	}{
		{"default challenges", nil, []string{challengeHTTP01}},
		{"all three listed", []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}, []string{challengeHTTP01, challengeTLSALPN01}},
		{"dns-01 listed first", []string{challengeDNS01, challengeTLSALPN01}, []string{challengeTLSALPN01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t, tt.challenges...)
			c := g.newClient()
			c.register()
			_, o := c.newOrderIDs(ipIDs("192.0.2.7", "2001:DB8::1"))
			wantIDs := ipIDs("192.0.2.7", "2001:db8::1") // RFC 5952 form
			if !slices.Equal(o.Identifiers, wantIDs) {
				t.Fatalf("order identifiers %v, want %v", o.Identifiers, wantIDs)
			}
			if len(o.Authorizations) != 2 {
				t.Fatalf("%d authorizations, want 2", len(o.Authorizations))
			}
			for _, az := range o.Authorizations {
				a := c.readAuthz(az)
				if a.Identifier.Type != "ip" {
					t.Errorf("authorization identifier %v, want type ip", a.Identifier)
				}
				if got := challengeTypes(a); !slices.Equal(got, tt.want) {
					t.Errorf("authorization for %s offers %v, want %v", a.Identifier.Value, got, tt.want)
				}
			}
		})
	}
}

func TestIP_OrderWhenOnlyDNS01IsOfferedIsRejected(t *testing.T) {
	g := newIPGateway(t, challengeDNS01)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": ipIDs("192.0.2.7")})
	if r.status != http.StatusBadRequest || r.problemType() != problemNS+"rejectedIdentifier" {
		t.Fatalf("newOrder: %d %s, want 400 rejectedIdentifier", r.status, r.body)
	}
}

func TestNegative_IPIdentifiers(t *testing.T) {
	withAllowIP := func(s *negScene) {
		allowTestIPs(s.t, s.g.h)
		s.a = s.registered()
	}
	order := func(ids ...identifier) func(s *negScene) *reply {
		return func(s *negScene) *reply {
			return s.a.post(s.url(pathNewOrder), map[string]any{"identifiers": ids})
		}
	}
	ip := func(v string) identifier { return identifier{Type: "ip", Value: v} }
	wantSubproblemFor := func(v string) func(t *testing.T, _ *negScene, _ *reply, p *Problem) {
		return func(t *testing.T, _ *negScene, _ *reply, p *Problem) {
			if p.Identifier == nil || p.Identifier.Value != v {
				t.Errorf("problem names identifier %v, want %s", p.Identifier, v)
			}
		}
	}
	runNegative(t, []negCase{
		{name: "IPv4 address outside allow_ip", setup: withAllowIP, send: order(ip("198.51.100.7")),
			typ: "rejectedIdentifier", status: 400, check: wantSubproblemFor("198.51.100.7")},
		{name: "IPv6 address outside allow_ip", setup: withAllowIP, send: order(ip("2001:db9::1")),
			typ: "rejectedIdentifier", status: 400, check: wantSubproblemFor("2001:db9::1")},
		{name: "loopback is not in allow_ip", setup: withAllowIP, send: order(ip("127.0.0.1")),
			typ: "rejectedIdentifier", status: 400},
		{name: "not an address", setup: withAllowIP, send: order(ip("192.0.2.300")),
			typ: "rejectedIdentifier", status: 400},
		{name: "address with a zone", setup: withAllowIP, send: order(ip("2001:db8::1%eth0")),
			typ: "rejectedIdentifier", status: 400},
		{name: "network instead of an address", setup: withAllowIP, send: order(ip("192.0.2.0/24")),
			typ: "rejectedIdentifier", status: 400},
		{name: "one good and one outside address", setup: withAllowIP, send: order(ip("192.0.2.7"), ip("203.0.113.1")),
			typ: "rejectedIdentifier", status: 400, check: wantSubproblemFor("203.0.113.1")},
		{name: "ip identifier without allow_ip", setup: withAccount, send: order(ip("192.0.2.7")),
			typ: "unsupportedIdentifier", status: 400, check: wantSubproblemFor("192.0.2.7")},
	})
}

func TestIP_IssuanceCarriesAddressSANs(t *testing.T) {
	tests := []struct {
		name      string
		ids       []identifier
		dnsNames  []string
		addresses []string // as ordered
		wantIPs   []string // canonical
	}{
		{"IPv4 and IPv6", ipIDs("192.0.2.7", "2001:DB8::1"), nil,
			[]string{"192.0.2.7", "2001:db8::1"}, []string{"192.0.2.7", "2001:db8::1"}},
		{"address and name", append(ipIDs("192.0.2.7"), identifier{Type: "dns", Value: "host.example.com"}), []string{"host.example.com"},
			[]string{"192.0.2.7"}, []string{"192.0.2.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t)
			c := g.newClient()
			c.register()
			url, o := c.readyOrderIDs(challengeHTTP01, tt.ids)
			r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", tt.dnsNames, tt.addresses...))})
			if r.status != http.StatusOK {
				t.Fatalf("finalize: %d %s", r.status, r.body)
			}
			o, _ = c.readOrder(url)
			if o.Status != storage.StatusValid {
				t.Fatalf("order is %s after finalize (%+v)", o.Status, o.Error)
			}
			leaf := c.downloadLeaf(o.Certificate)
			if got := addrSet(leaf.IPAddresses); !slices.Equal(got, tt.wantIPs) {
				t.Errorf("certificate IP SANs %v, want %v", got, tt.wantIPs)
			}
			if !slices.Equal(leaf.DNSNames, tt.dnsNames) {
				t.Errorf("certificate DNS names %v, want %v", leaf.DNSNames, tt.dnsNames)
			}
			cert, err := g.store.GetCertificate(context.Background(), path.Base(o.Certificate))
			if err != nil {
				t.Fatal(err)
			}
			for _, ip := range tt.wantIPs {
				if !slices.Contains(cert.Names, ip) {
					t.Errorf("stored certificate names %v lack %s", cert.Names, ip)
				}
			}
		})
	}
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	return negECKey(t, elliptic.P256())
}

// dropIPsIssuer certifies the names but drops the addresses.
type dropIPsIssuer struct{ *testIssuer }

func (d dropIPsIssuer) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	stripped := *req
	stripped.IPAddresses = nil
	return d.testIssuer.Issue(ctx, &stripped)
}

// matchesOrder must catch an issuer that drops the IP SANs, rather than
// storing a certificate that lacks an ordered identifier.
func TestIP_IssuerOmittingAddressesInvalidatesOrder(t *testing.T) {
	g := newIPGateway(t)
	g.h.issuer = dropIPsIssuer{g.issuer}
	c := g.newClient()
	c.register()
	url, o := c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7"))
	r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", nil, "192.0.2.7"))})
	var fin orderBody
	r.decode(t, &fin)
	if fin.Status != storage.StatusInvalid || fin.Certificate != "" {
		t.Fatalf("finalize answered %d %s, want an invalid order without certificate", r.status, r.body)
	}
	o, _ = c.readOrder(url)
	if o.Status != storage.StatusInvalid || o.Error == nil || o.Certificate != "" {
		t.Fatalf("order is %s with error %+v and certificate %q, want invalid without one", o.Status, o.Error, o.Certificate)
	}

}

func TestIP_FinalizeRefusesCSRNotMatchingAddresses(t *testing.T) {
	tests := []struct {
		name  string
		cn    string
		names []string
		addrs []string
	}{
		{"missing an address", "", nil, []string{"192.0.2.7"}},
		{"an extra address", "", nil, []string{"192.0.2.7", "2001:db8::1", "192.0.2.8"}},
		{"a different address", "", nil, []string{"192.0.2.7", "2001:db8::2"}},
		{"an extra DNS name", "", []string{"host.example.com"}, []string{"192.0.2.7", "2001:db8::1"}},
		{"a common name that is another address", "192.0.2.9", nil, []string{"192.0.2.7", "2001:db8::1"}},
		{"no names at all", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t)
			c := g.newClient()
			c.register()
			url, o := c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7", "2001:db8::1"))
			r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), tt.cn, tt.names, tt.addrs...))})
			if r.status != http.StatusBadRequest || r.problemType() != problemNS+"badCSR" {
				t.Fatalf("finalize: %d %s, want 400 badCSR", r.status, r.body)
			}
			if o, _ = c.readOrder(url); o.Status != storage.StatusReady {
				t.Fatalf("order is %s after a refused CSR, want ready", o.Status)
			}
			if issued, _ := g.issuer.counts(); issued != 0 {
				t.Fatalf("issuer issued %d certificates", issued)
			}
		})
	}
}

func TestIP_FinalizeAcceptsAddressAsCommonName(t *testing.T) {
	g := newIPGateway(t)
	c := g.newClient()
	c.register()
	_, o := c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7", "2001:db8::1"))
	r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "2001:DB8::1", nil, "192.0.2.7", "2001:db8::1"))})
	if r.status != http.StatusOK {
		t.Fatalf("finalize with the IPv6 address as common name: %d %s", r.status, r.body)
	}
}

// RFC 8738 §3 puts an ip identifier in an iPAddress SAN; a CSR naming the
// address as a dNSName does not hold the order's identifiers. checkCSR
// compares names and addresses as one set of strings, so it accepts it.
func TestIP_FinalizeRefusesAddressAsDNSName(t *testing.T) {
	g := newIPGateway(t)
	c := g.newClient()
	c.register()
	_, o := c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7"))
	r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", []string{"192.0.2.7"}))})
	if r.status != http.StatusBadRequest || r.problemType() != problemNS+"badCSR" {
		t.Fatalf("finalize of a CSR naming the address as a DNS name: %d %s, want 400 badCSR", r.status, r.body)
	}
}

func TestIP_RevocationByAccountHoldingAddressAuthorizations(t *testing.T) {
	addrs := []string{"192.0.2.7", "2001:db8::1"}
	tests := []struct {
		name  string
		holds []string // addresses the revoking account has validated
		want  int
	}{
		{"account holding both addresses", addrs, http.StatusOK},
		{"account holding one address", addrs[:1], http.StatusForbidden},
		{"account holding none", nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t)
			owner := g.newClient()
			owner.register()
			url, o := owner.readyOrderIDs(challengeHTTP01, ipIDs(addrs...))
			if r := owner.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", nil, addrs...))}); r.status != http.StatusOK {
				t.Fatalf("finalize: %d %s", r.status, r.body)
			}
			o, _ = owner.readOrder(url)
			leaf := owner.downloadLeaf(o.Certificate).Raw

			other := g.newClient()
			other.register()
			if len(tt.holds) > 0 {
				other.readyOrderIDs(challengeHTTP01, ipIDs(tt.holds...))
			}
			r := other.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf)})
			if r.status != tt.want {
				t.Fatalf("revoke: %d %s, want %d", r.status, r.body, tt.want)
			}
			_, revoked := g.issuer.counts()
			if wantRevoked := tt.want == http.StatusOK; (revoked == 1) != wantRevoked {
				t.Fatalf("issuer revoked %d certificates", revoked)
			}
			if tt.want != http.StatusOK && r.problemType() != problemNS+"unauthorized" {
				t.Fatalf("refusal is %s, want unauthorized", r.problemType())
			}
		})
	}
}

func TestTLSALPN01_OfferedOnlyWhenListed(t *testing.T) {
	tests := []struct {
		name       string
		challenges []string
		ident      string
		want       []string
	}{
		{"default challenges", nil, "host.example.com", []string{challengeHTTP01, challengeDNS01}},
		{"listed", []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}, "host.example.com",
			[]string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}},
		{"listed alone", []string{challengeTLSALPN01}, "host.example.com", []string{challengeTLSALPN01}},
		// RFC 8737 §3: tls-alpn-01 cannot validate a wildcard.
		{"wildcard gets only dns-01", []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}, "*.example.com",
			[]string{challengeDNS01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			if tt.challenges != nil {
				g.h.Challenges = tt.challenges
			}
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor(tt.ident)
			if got := challengeTypes(c.readAuthz(o.Authorizations[0])); !slices.Equal(got, tt.want) {
				t.Fatalf("authorization offers %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTLSALPN01_PostRunsTLSALPN01Validation(t *testing.T) {
	tests := []struct {
		name string
		id   identifier
	}{
		{"DNS name", identifier{Type: "dns", Value: "alpn.example.com"}},
		{"IPv6 address", identifier{Type: "ip", Value: "2001:db8::7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t, challengeHTTP01, challengeDNS01, challengeTLSALPN01)
			v := &recordingValidator{}
			g.h.validator = v
			c := g.newClient()
			c.register()
			_, o := c.newOrderIDs([]identifier{tt.id})
			a := c.readAuthz(o.Authorizations[0])
			ch := challengeOfType(t, a, challengeTLSALPN01)
			c.post(ch.URL, map[string]any{})
			a = c.waitAuthz(o.Authorizations[0], storage.StatusValid)
			if got := challengeOfType(t, a, challengeTLSALPN01).Status; got != storage.StatusValid {
				t.Fatalf("tls-alpn-01 challenge is %s, want valid", got)
			}
			tp, err := thumbprint(&jose.JSONWebKey{Key: c.key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			want := []validatorCall{{challengeTLSALPN01, tt.id.Value, ch.Token + "." + tp}}
			if got := v.callsOf(challengeTLSALPN01); !slices.Equal(got, want) {
				t.Fatalf("TLSALPN01 calls %v, want %v", got, want)
			}
			if n := v.count(challengeHTTP01) + v.count(challengeDNS01); n != 0 {
				t.Fatalf("%d http-01/dns-01 validations for a tls-alpn-01 POST", n)
			}
		})
	}
}

func TestCAA_RefusalAfterSuccessfulChallengeInvalidatesAuthorization(t *testing.T) {
	g := newGateway(t)
	v := &recordingValidator{caa: caaRefusal()}
	g.h.validator = v
	c := g.newClient()
	c.register()
	url, o := c.newOrderFor("caa.example.com")
	a := c.readAuthz(o.Authorizations[0])
	c.post(challengeOfType(t, a, challengeHTTP01).URL, map[string]any{})
	a = c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	ch := challengeOfType(t, a, challengeHTTP01)
	if ch.Status != storage.StatusInvalid || ch.Error == nil || ch.Error.Type != problemNS+"caa" {
		t.Fatalf("challenge is %s with error %+v, want invalid with caa", ch.Status, ch.Error)
	}
	want := []validatorCall{{methodCAA, "caa.example.com", challengeHTTP01}}
	if got := v.callsOf(methodCAA); !slices.Equal(got, want) {
		t.Fatalf("CAA calls %v, want %v", got, want)
	}
	if v.count(challengeHTTP01) != 1 {
		t.Fatalf("CAA was checked without the challenge being validated first")
	}
	if o, _ = c.readOrder(url); o.Status != storage.StatusInvalid {
		t.Fatalf("order is %s, want invalid", o.Status)
	}
}

func TestCAA_NotCheckedAfterFailedChallenge(t *testing.T) {
	g := newGateway(t)
	v := &recordingValidator{failFirst: 1}
	g.h.validator = v
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("fails.example.com")
	c.post(challengeOfType(t, c.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
	a := c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	if ch := challengeOfType(t, a, challengeHTTP01); ch.Error == nil || ch.Error.Type != problemNS+"connection" {
		t.Fatalf("challenge error %+v, want the validation's own (connection)", ch.Error)
	}
	if n := v.count(methodCAA); n != 0 {
		t.Fatalf("CAA checked %d times after a failed challenge", n)
	}
}

func TestCAA_NotCheckedForAddresses(t *testing.T) {
	g := newIPGateway(t)
	v := &recordingValidator{caa: caaRefusal()}
	g.h.validator = v
	c := g.newClient()
	c.register()
	c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7", "2001:db8::1"))
	if n := v.count(methodCAA); n != 0 {
		t.Fatalf("CAA checked %d times for ip identifiers", n)
	}
}

func TestFinalize_RechecksCAAOnlyForValidationsOlderThan8Hours(t *testing.T) {
	tests := []struct {
		name          string
		ids           []identifier
		caaIdentities []string
		advance       time.Duration
		caa           error
		wantStatus    int
		wantType      string // problem type when refused
		wantRechecks  int
	}{
		{"older than 8h and CAA now forbids", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusForbidden, "caa", 1},
		{"older than 8h and CAA still allows", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, nil, http.StatusOK, "", 1},
		{"two names older than 8h, both forbidden", dnsIDs("a.example.com", "b.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusForbidden, "caa", 2},
		{"within 8h", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter - time.Hour, caaRefusal(), http.StatusOK, "", 0},
		{"CAA checking off", dnsIDs("recheck.example.com"), nil,
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusOK, "", 0},
		{"ip identifiers", ipIDs("192.0.2.7"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusOK, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t)
			clock := g.withClock()
			v := &recordingValidator{}
			g.h.validator = v
			g.h.CAAIdentities = tt.caaIdentities
			// Long enough that neither the order nor its authorizations
			// expire while the clock moves.
			g.h.AuthzLifetime = caddy.Duration(72 * time.Hour)
			g.h.OrderLifetime = caddy.Duration(72 * time.Hour)
			c := g.newClient()
			c.register()
			url, o := c.readyOrderIDs(challengeHTTP01, tt.ids)
			before := v.count(methodCAA)
			stored, err := g.store.GetOrder(context.Background(), orderID(url))
			if err != nil {
				t.Fatal(err)
			}

			clock.Advance(tt.advance)
			v.setCAA(tt.caa)
			var names, addrs []string
			for _, id := range tt.ids {
				if id.Type == "ip" {
					addrs = append(addrs, id.Value)
				} else {
					names = append(names, id.Value)
				}
			}
			r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", names, addrs...))})
			if r.status != tt.wantStatus {
				t.Fatalf("finalize: %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if got := v.count(methodCAA) - before; got != tt.wantRechecks {
				t.Fatalf("CAA checked %d times at finalize, want %d", got, tt.wantRechecks)
			}
			issued, _ := g.issuer.counts()
			if tt.wantStatus == http.StatusOK {
				if issued != 1 {
					t.Fatalf("issued %d certificates, want 1", issued)
				}
				return
			}
			if r.problemType() != problemNS+tt.wantType {
				t.Fatalf("problem %s, want %s", r.problemType(), tt.wantType)
			}
			if issued != 0 {
				t.Fatalf("issued %d certificates after a CAA refusal", issued)
			}
			after, err := g.store.GetOrder(context.Background(), orderID(url))
			if err != nil {
				t.Fatal(err)
			}
			if after.Version != stored.Version || after.Status != stored.Status {
				t.Fatalf("order record moved from v%d %s to v%d %s", stored.Version, stored.Status, after.Version, after.Status)
			}
			if o, _ = c.readOrder(url); o.Status != storage.StatusReady {
				t.Fatalf("order is %s after a CAA refusal, want ready", o.Status)
			}
		})
	}
}

func TestValidationAttempts(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		failFirst int
		want      string
		wantCalls int
	}{
		{"second try succeeds with two attempts", 2, 1, storage.StatusValid, 2},
		{"first failure is final with one attempt", 1, 1, storage.StatusInvalid, 1},
		{"success on the first try stops trying", 2, 0, storage.StatusValid, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			v := &recordingValidator{failFirst: tt.failFirst}
			g.h.validator = v
			g.h.ValidationAttempts = tt.attempts
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("retry.example.com")
			c.post(challengeOfType(t, c.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
			c.waitAuthz(o.Authorizations[0], tt.want)
			if got := v.count(challengeHTTP01); got != tt.wantCalls {
				t.Fatalf("%d validation tries, want %d", got, tt.wantCalls)
			}
		})
	}
}

// perAccountScene has account a hold one blocked validation, with the cap
// at one validation per account, and a second pending authorization.
func perAccountScene(s *negScene) {
	s.g.h.MaxValidationsPerAccount = 1
	gate := newGateValidator(s.t)
	s.g.h.validator = gate
	s.a = s.registered()
	s.pendingOrder(s.a, "one.example.com", "two.example.com")
	first := s.a.readAuthz(s.order.Authorizations[0])
	s.a.post(challengeOfType(s.t, first, challengeHTTP01).URL, map[string]any{})
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		s.t.Fatal("first validation did not start")
	}
}

func TestNegative_MaxValidationsPerAccount(t *testing.T) {
	runNegative(t, []negCase{{
		name:  "second validation of the same account",
		setup: perAccountScene,
		send: func(s *negScene) *reply {
			second := s.a.readAuthz(s.order.Authorizations[1])
			return s.a.post(challengeOfType(s.t, second, challengeHTTP01).URL, map[string]any{})
		},
		typ: "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, _ *negScene, r *reply, _ *Problem) {
			if r.header.Get("Retry-After") == "" {
				t.Error("rateLimited answer without Retry-After")
			}
		},
	}})
}

func TestMaxValidationsPerAccount_OtherAccountIsNotAffected(t *testing.T) {
	g := newGateway(t)
	s := &negScene{t: t, g: g}
	perAccountScene(s)
	gate := g.h.validator.(*gateValidator)

	b := g.newClient()
	b.register()
	_, o := b.newOrderFor("other.example.com")
	var ch challengeBody
	r := b.post(challengeOfType(t, b.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusProcessing {
		t.Fatalf("another account's challenge: %d %s, want 200 processing", r.status, r.body)
	}
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		t.Fatal("another account's validation did not start")
	}

	// Once a's validation ends, a may validate again.
	gate.open()
	s.a.waitAuthz(s.order.Authorizations[0], storage.StatusValid)
	second := s.a.readAuthz(s.order.Authorizations[1])
	if r := s.a.post(challengeOfType(t, second, challengeHTTP01).URL, map[string]any{}); r.status != http.StatusOK {
		t.Fatalf("a's second challenge after the first ended: %d %s", r.status, r.body)
	}
	s.a.waitAuthz(s.order.Authorizations[1], storage.StatusValid)
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"none is empty", []string{"none"}, []string{}, false},
		{"empty", nil, []string{}, false},
		{"networks", []string{"10.0.0.0/8", "2001:db8::/32"}, []string{"10.0.0.0/8", "2001:db8::/32"}, false},
		{"host bits are masked", []string{"192.0.2.7/24"}, []string{"192.0.2.0/24"}, false},
		{"bare address", []string{"192.0.2.7"}, nil, true},
		{"prefix too long", []string{"10.0.0.0/33"}, nil, true},
		{"not a network", []string{"intranet"}, nil, true},
		{"none among networks", []string{"none", "10.0.0.0/8"}, nil, true},
		{"None in upper case", []string{"None"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePrefixes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsePrefixes(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePrefixes(%q): %v", tt.in, err)
			}
			gotS := make([]string, len(got))
			for i, p := range got {
				gotS[i] = p.String()
			}
			if !slices.Equal(gotS, tt.want) {
				t.Fatalf("parsePrefixes(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}

func TestDenyValidationTo_DefaultsCoverLoopbackLinkLocalAndMetadata(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	deny, err := parsePrefixes(h.DenyValidationTo)
	if err != nil {
		t.Fatalf("default deny_validation_to: %v", err)
	}
	contains := func(addr string) bool {
		a := netip.MustParseAddr(addr)
		for _, p := range deny {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, a := range []string{"169.254.169.254", "127.0.0.1", "127.1.2.3", "::1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::"} {
		if !contains(a) {
			t.Errorf("default deny_validation_to lets validation connect to %s", a)
		}
	}
	// Enterprise names live in private ranges.
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "172.16.0.1", "fd00::1", "192.0.2.7"} {
		if contains(a) {
			t.Errorf("default deny_validation_to refuses %s", a)
		}
	}
	none := &Handler{DenyValidationTo: []string{"none"}}
	none.setDefaults()
	if p, err := parsePrefixes(none.DenyValidationTo); err != nil || len(p) != 0 {
		t.Fatalf("deny_validation_to none: %v %v, want empty", p, err)
	}
}

// provisionIssuer is an issuer module for Provision tests, which would
// otherwise need the pki app. It issues nothing.
type provisionIssuer struct{}

func (provisionIssuer) Issue(context.Context, *IssueRequest) ([]*x509.Certificate, error) {
	return nil, errors.New("provisionIssuer issues nothing")
}

func (provisionIssuer) Revoke(context.Context, *x509.Certificate, int) error { return nil }

func (provisionIssuer) MaxLifetime() time.Duration { return time.Hour }

func (provisionIssuer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.issuers.provision_test",
		New: func() caddy.Module { return new(provisionIssuer) },
	}
}

func init() { caddy.RegisterModule(provisionIssuer{}) }

func TestProvision_NetworkLists(t *testing.T) {
	tests := []struct {
		name    string
		deny    []string
		allowIP []string
		wantErr string
	}{
		{"bad deny_validation_to", []string{"10.0.0.0/33"}, nil, "deny_validation_to"},
		{"address in deny_validation_to", []string{"10.0.0.1"}, nil, "deny_validation_to"},
		{"none with a network in deny_validation_to", []string{"none", "10.0.0.0/8"}, nil, "deny_validation_to"},
		{"bad allow_ip", nil, []string{"192.0.2.0/24", "intranet"}, "allow_ip"},
		{"none", []string{"none"}, []string{"192.0.2.0/24"}, ""},
		{"networks", []string{"10.0.0.0/8"}, []string{"2001:db8::/32"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			h := &Handler{
				Name:             "provision-networks-" + string(rune('a'+i)),
				Resolvers:        []string{"192.0.2.53:53"},
				DenyValidationTo: tt.deny,
				AllowIP:          tt.allowIP,
				StorageRaw:       json.RawMessage(`{"module":"memory"}`),
				IssuerRaw:        json.RawMessage(`{"module":"provision_test"}`),
			}
			err := h.Provision(ctx)
			defer func() {
				if cerr := h.Cleanup(); cerr != nil {
					t.Errorf("Cleanup: %v", cerr)
				}
			}()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				if want := len(tt.allowIP); len(h.allowIP) != want {
					t.Fatalf("allow_ip parsed to %v, want %d networks", h.allowIP, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestDirectory_MetaShowsCAAIdentitiesWhenSet(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
	}{
		{"set", []string{"ca.example.net", "ca.example.org"}},
		{"unset", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.CAAIdentities = tt.ids
			resp, err := g.srv.Client().Get(g.base + pathDirectory)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var dir struct {
				Meta map[string]json.RawMessage `json:"meta"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
				t.Fatal(err)
			}
			raw, ok := dir.Meta["caaIdentities"]
			if tt.ids == nil {
				if ok {
					t.Fatalf("meta has caaIdentities %s without caa_identities", raw)
				}
				return
			}
			var got []string
			if err := json.Unmarshal(raw, &got); err != nil || !slices.Equal(got, tt.ids) {
				t.Fatalf("meta caaIdentities %s (%v), want %v", raw, err, tt.ids)
			}
		})
	}
}
