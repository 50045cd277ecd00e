package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// acmeEnv is a gateway wired to a loopback DNS server and an http-01
// responder: every name resolves to 127.0.0.1, so http-01 validation of
// any name reaches HTTP01, and dns-01 reads the TXT records in TXT.
type acmeEnv struct {
	G    *gateway
	DNS  *testsrv.ZoneDNS
	HTTP *testsrv.HTTP01
	TXT  *txtRecords
}

// startACMEEnv starts the DNS server, the responder and Caddy with an
// in-memory gateway that validates through them.
func startACMEEnv(t testing.TB) *acmeEnv {
	t.Helper()
	return startACMEEnvWith(t, "")
}

// startACMEEnvWith is startACMEEnv with more lines (an issuer block) in the
// gateway's configuration.
func startACMEEnvWith(t testing.TB, more string) *acmeEnv {
	t.Helper()
	dns := startDNS(t)
	resp := startHTTP01(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage memory
		resolvers %s
		http_port %d
		%s
	`, dns.Addr(), resp.Port(), more))
	return newACMEEnv(g, dns, resp)
}

// newACMEEnv wires gateway g to dns and, unless nil, the http-01
// responder resp.
func newACMEEnv(g *gateway, dns *testsrv.ZoneDNS, resp *testsrv.HTTP01) *acmeEnv {
	return &acmeEnv{G: g, DNS: dns, HTTP: resp, TXT: &txtRecords{dns: dns, values: map[string][]string{}}}
}

// txtRecords lets solvers add and remove single TXT values: a wildcard
// and its base name are validated through the same _acme-challenge name
// with two values at once.
type txtRecords struct {
	dns *testsrv.ZoneDNS

	mu     sync.Mutex
	values map[string][]string
}

func (r *txtRecords) Add(name, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[name] = append(r.values[name], value)
	r.dns.SetTXT(name, r.values[name]...)
}

func (r *txtRecords) Remove(name, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := slices.DeleteFunc(r.values[name], func(v string) bool { return v == value })
	if len(vs) == 0 {
		delete(r.values, name)
		r.dns.ClearTXT(name)
		return
	}
	r.values[name] = vs
	r.dns.SetTXT(name, vs...)
}

// dns01Value is the TXT value for a key authorization (RFC 8555 §8.4).
func dns01Value(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// parseChain decodes a PEM chain, leaf first.
func parseChain(t testing.TB, chainPEM []byte) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parsing certificate in chain: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		t.Fatalf("no certificate in chain:\n%s", chainPEM)
	}
	return chain
}

// checkChain verifies that chain, leaf first, leads to the gateway's CA
// for server authentication and that the leaf names exactly names.
// It returns the leaf.
func checkChain(t testing.TB, g *gateway, chain []*x509.Certificate, names ...string) *x509.Certificate {
	t.Helper()
	leaf := chain[0]
	if leaf.IsCA {
		t.Fatalf("chain starts with a CA certificate (%s), not the leaf", leaf.Subject)
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         g.Roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("leaf does not verify against the gateway's CA: %v", err)
	}
	got := slices.Sorted(slices.Values(leaf.DNSNames))
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Fatalf("leaf names %v, want exactly %v", got, want)
	}
	if len(leaf.IPAddresses)+len(leaf.EmailAddresses)+len(leaf.URIs) > 0 {
		t.Fatalf("leaf has names besides DNS names: %v %v %v", leaf.IPAddresses, leaf.EmailAddresses, leaf.URIs)
	}
	return leaf
}

// rawResponse is an ACME response read by postJWS.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// postJWS sends one JWS request signed by key, naming the account by kid
// or, when kid is empty, carrying the key as jwk. It is for the resources
// the client libraries do not reach (the orders list).
func postJWS(t testing.TB, g *gateway, key *ecdsa.PrivateKey, kid, url string, payload []byte) rawResponse {
	t.Helper()
	hc := g.HTTPClient()
	var dir struct {
		NewNonce string `json:"newNonce"`
	}
	resp, err := hc.Get(g.Directory)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.Head(dir.NewNonce)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	body := signJWS(t, key, kid, resp.Header.Get("Replay-Nonce"), url, payload)

	resp, err = hc.Post(url, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: respBody}
}
