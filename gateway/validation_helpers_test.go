package gateway

// Test doubles and helpers for the validation tests: a validator that
// records its calls, ip identifier orders, CSRs with addresses.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

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

var testAllowIP = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}

// allowTestIPs lets h accept ip identifiers in testAllowIP.
func allowTestIPs(_ *testing.T, h *Server) {
	h.cfg.AllowIP = testAllowIP
	h.allowIP = testAllowIP
}

// newIPGateway is a gateway that accepts ip identifiers in testAllowIP; the
// harness's issuer certifies the addresses.
func newIPGateway(t *testing.T, challenges ...string) *gateway {
	g := newGateway(t)
	allowTestIPs(t, g.h)
	if len(challenges) > 0 {
		g.h.cfg.Challenges = challenges
	}
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
