package gateway

// ip identifiers (RFC 8738): accepted in allow_ip, validated without
// dns-01, issued as IP SANs, revocable by authorizations.

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"net/http"
	"path"
	"slices"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

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
