package gateway

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/internal/testca"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

// gateway is a Server served by httptest, with test doubles for the two
// parts that reach outside: the issuer (a throwaway CA) and the validator
// (answers what the test says).
type gateway struct {
	t      *testing.T
	h      *Server
	srv    *httptest.Server
	store  *memory.Store
	issuer *testIssuer
	valid  *testValidator
	base   string
	// pgStores are the stores of serversOnPostgres.
	pgStores []*postgres.Store
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	store := memory.New()
	nonces, err := NewNonceStore(time.Hour, 1000, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, store: store, issuer: newTestIssuer(t), valid: &testValidator{}}
	g.h, err = New(Config{
		PathPrefix:  "/acme",
		Store:       store,
		Nonces:      nonces,
		Issuer:      g.issuer,
		Validator:   g.valid,
		Validations: NewValidationPool(8),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewServer(g.h)
	g.base = g.srv.URL + g.h.cfg.PathPrefix
	t.Cleanup(func() {
		g.srv.Close()
		g.h.Close()
		_ = g.h.validating.Stop()
	})
	return g
}

// testValidator accepts every challenge unless fail is set.
type testValidator struct {
	mu   sync.Mutex
	fail error
	caa  error // what CAA answers
}

func (v *testValidator) result() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fail
}

func (v *testValidator) HTTP01(context.Context, string, string, string) error { return v.result() }
func (v *testValidator) DNS01(context.Context, string, string) error          { return v.result() }
func (v *testValidator) TLSALPN01(context.Context, string, string) error      { return v.result() }
func (v *testValidator) CAA(context.Context, string, bool, string, string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.caa
}

func (v *testValidator) failWith(kind validate.Kind) {
	v.mu.Lock()
	v.fail = &validate.Error{Kind: kind, Detail: "test says no"}
	v.mu.Unlock()
}

// testIssuer signs with a throwaway CA and counts what it does.
type testIssuer struct {
	*testca.CA

	mu     sync.Mutex
	issued int
	fail   error
}

func newTestIssuer(t *testing.T) *testIssuer {
	ti, err := newTestCA()
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

// newTestCA is a testIssuer with a fresh CA; it returns errors for callers
// without a *testing.T (benchmarks' workers).
func newTestCA() (*testIssuer, error) {
	ca, err := testca.New("test CA")
	if err != nil {
		return nil, err
	}
	return &testIssuer{CA: ca}, nil
}

func (ti *testIssuer) Issue(_ context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if ti.fail != nil {
		return nil, ti.fail
	}
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		DNSNames:       req.Names,
		EmailAddresses: emailSAN(req.Email),
		IPAddresses:    netIPs(req.IPAddresses),
		NotBefore:      time.Now().Add(-time.Minute),
		NotAfter:       time.Now().Add(time.Hour),
	}
	chain, err := ti.Sign(tmpl, req.CSR.PublicKey)
	if err != nil {
		return nil, err
	}
	ti.issued++
	return chain, nil
}

func (ti *testIssuer) Revoke(_ context.Context, c *x509.Certificate, reason int) error {
	ti.CA.Revoke(c, reason)
	return nil
}

func (ti *testIssuer) MaxLifetime() time.Duration { return 24 * time.Hour }

func (ti *testIssuer) counts() (issued, revoked int) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.issued, ti.Revoked()
}

// client is a minimal ACME client that builds requests by hand, so that
// tests can also build wrong ones.
type client struct {
	g   *gateway
	key crypto.Signer
	alg jose.SignatureAlgorithm
	kid string
	// patience is how long waitAuthz polls. Default: 2s.
	patience time.Duration
}

func (g *gateway) newClient() *client {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		g.t.Fatal(err)
	}
	return &client{g: g, key: key, alg: jose.ES256}
}

// reply is a decoded answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// problemType returns the problem type of an error reply, "" otherwise.
// json decodes the body into v, for callers that cannot stop the test
// (goroutines).
func (r *reply) json(v any) error { return json.Unmarshal(r.body, v) }

func (r *reply) problemType() string {
	var p Problem
	if json.Unmarshal(r.body, &p) != nil {
		return ""
	}
	return p.Type
}

func (g *gateway) nonce() string {
	resp, err := g.srv.Client().Head(g.base + pathNewNonce)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// sign makes a flattened JWS over payload with the given protected headers.
func sign(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, payload []byte, headers map[jose.HeaderKey]any, embedJWK bool) []byte {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: headers, EmbedJWK: embedJWK}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(jws.FullSerialize())
}

// post sends a JWS signed by the client (kid when it has an account).
func (c *client) post(url string, payload any) *reply {
	c.g.t.Helper()
	return c.postRaw(url, marshalPayload(c.g.t, payload), c.kid == "")
}

func (c *client) postRaw(url string, payload []byte, embedJWK bool) *reply {
	c.g.t.Helper()
	headers := map[jose.HeaderKey]any{"nonce": c.g.nonce(), "url": url}
	if !embedJWK {
		headers["kid"] = c.kid
	}
	return c.g.send(url, "application/jose+json", sign(c.g.t, c.key, c.alg, payload, headers, embedJWK))
}

func marshalPayload(t *testing.T, payload any) []byte {
	switch p := payload.(type) {
	case nil:
		return []byte{} // POST-as-GET: "payload": ""
	case []byte:
		return p
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (g *gateway) send(url, contentType string, body []byte) *reply {
	g.t.Helper()
	resp, err := g.srv.Client().Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// register creates the client's account.
func (c *client) register() {
	c.g.t.Helper()
	r := c.post(c.g.base+pathNewAccount, map[string]any{"termsOfServiceAgreed": true, "contact": []string{"mailto:admin@example.com"}})
	if r.status != http.StatusCreated {
		c.g.t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	c.kid = r.header.Get("Location")
}

// orderReady creates an order for names and solves its authorizations.
func (c *client) orderReady(names ...string) (url string, o orderBody) {
	c.g.t.Helper()
	return c.orderReadyWith(map[string]any{"identifiers": dnsIDs(names...)})
}

// orderReadyWith creates an order with the newOrder payload and solves
// its authorizations.
func (c *client) orderReadyWith(payload map[string]any) (url string, o orderBody) {
	t := c.g.t
	t.Helper()
	r := c.post(c.g.base+pathNewOrder, payload)
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder: %d %s", r.status, r.body)
	}
	url = r.header.Get("Location")
	r.decode(t, &o)
	for _, az := range o.Authorizations {
		var a authzBody
		c.post(az, nil).decode(t, &a)
		if a.Status == storage.StatusValid {
			continue
		}
		c.post(a.Challenges[0].URL, map[string]any{})
		c.waitAuthz(az, storage.StatusValid)
	}
	c.post(url, nil).decode(t, &o)
	return url, o
}

func (c *client) waitAuthz(url, want string) authzBody {
	t := c.g.t
	t.Helper()
	var a authzBody
	patience := c.patience
	if patience == 0 {
		patience = 2 * time.Second
	}
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); {
		c.post(url, nil).decode(t, &a)
		if a.Status != storage.StatusPending {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.Status != want {
		t.Fatalf("authorization %s is %s, want %s", url, a.Status, want)
	}
	return a
}

// csrFor makes a CSR for names with a fresh P-256 key.
func csrFor(t *testing.T, names ...string) ([]byte, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrWithKey(t, key, names...), key
}

func csrWithKey(t *testing.T, key crypto.Signer, names ...string) []byte {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// issue runs a whole issuance for names and returns the certificate URL
// and the leaf's DER.
func (c *client) issue(names ...string) (string, []byte, crypto.Signer) {
	t := c.g.t
	t.Helper()
	url, o := c.orderReady(names...)
	csr, key := csrFor(t, names...)
	r := c.post(o.Finalize, map[string]string{"csr": b64(csr)})
	if r.status != http.StatusOK {
		t.Fatalf("finalize: %d %s", r.status, r.body)
	}
	c.post(url, nil).decode(t, &o)
	if o.Status != storage.StatusValid {
		t.Fatalf("order is %s after finalize", o.Status)
	}
	r = c.post(o.Certificate, nil)
	if r.status != http.StatusOK {
		t.Fatalf("download: %d %s", r.status, r.body)
	}
	leaf := firstPEM(t, r.body)
	return o.Certificate, leaf, key
}

func firstPEM(t *testing.T, chain []byte) []byte {
	t.Helper()
	certs, err := parsePEMChain(chain)
	if err != nil || len(certs) == 0 {
		t.Fatalf("bad chain: %v", err)
	}
	return certs[0].Raw
}

// newOrderFor posts a new order for names and returns it with its URL.
func (c *client) newOrderFor(names ...string) (string, orderBody) {
	t := c.g.t
	t.Helper()
	r := c.post(c.g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs(names...)})
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder: %d %s", r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	return r.header.Get("Location"), o
}

func (c *client) readAuthz(url string) authzBody {
	c.g.t.Helper()
	var a authzBody
	c.post(url, nil).decode(c.g.t, &a)
	return a
}

// parsePEMChain decodes a PEM chain.
func parsePEMChain(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return out, nil
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
