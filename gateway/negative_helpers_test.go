package gateway

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// negCase is one malformed or hostile request: setup builds the state it
// runs against, send makes the request, and the answer must be the problem
// typ (without its namespace) with status, leaving every record setup
// tracked as it was.
type negCase struct {
	name   string
	setup  func(s *negScene)
	send   func(s *negScene) *reply
	typ    string
	status int
	// check, when set, asserts more of the problem (subproblems, Location...).
	check func(t *testing.T, s *negScene, r *reply, p *Problem)
}

func (tc negCase) run(t *testing.T) {
	g := newGateway(t)
	s := &negScene{t: t, g: g}
	if tc.setup != nil {
		tc.setup(s)
	}
	before := s.snapshot()
	r := tc.send(s)

	// Errors, not fatal: a request that wrongly succeeds must still have
	// its changes reported below.
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("answer is not a problem document: %d %q", r.status, r.body)
	}
	t.Logf("answer: %d %s: %s", r.status, p.Type, p.Detail)
	if want := problemNS + tc.typ; p.Type != want || r.status != tc.status {
		t.Errorf("got %d %s (%s), want %d %s", r.status, p.Type, p.Detail, tc.status, want)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d differs from HTTP status %d", p.Status, r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if r.header.Get("Replay-Nonce") == "" {
		t.Error("problem response carries no Replay-Nonce")
	}
	if tc.check != nil {
		tc.check(t, s, r, &p)
	}

	after := s.snapshot()
	if !maps.Equal(before.records, after.records) {
		t.Errorf("records changed:\nbefore %v\nafter  %v", before.records, after.records)
	}
	if before.issued != after.issued || before.revoked != after.revoked {
		t.Errorf("issuer counts moved from issued %d revoked %d to issued %d revoked %d",
			before.issued, before.revoked, after.issued, after.revoked)
	}
	for _, key := range s.keysWithoutAccount {
		tp, err := thumbprint(&jose.JSONWebKey{Key: key.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if a, err := g.store.AccountByThumbprint(context.Background(), tp); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("an account exists for a key that was refused: %+v, %v", a, err)
		}
	}
}

// negScene is what a case set up: clients, an order, a certificate, and the
// ids of every record whose Version and Status must not move.
type negScene struct {
	t *testing.T
	g *gateway

	a, b *client // a acts; b is another account, when the case needs one

	orderURL string
	order    orderBody
	certURL  string
	leaf     []byte

	accounts, orders, authzs, certs []string
	// keysWithoutAccount are keys for which no account may exist afterwards.
	keysWithoutAccount []crypto.Signer
}

// registered returns a new client with an account, tracked.
func (s *negScene) registered() *client {
	c := s.g.newClient()
	c.register()
	s.accounts = append(s.accounts, path.Base(c.kid))
	return c
}

// stranger returns a client whose key must still have no account at the end.
func (s *negScene) stranger() *client {
	c := s.g.newClient()
	s.keysWithoutAccount = append(s.keysWithoutAccount, c.key)
	return c
}

// readyOrder gives c a ready order for names, kept in s.
func (s *negScene) readyOrder(c *client, names ...string) {
	s.orderURL, s.order = c.orderReady(names...)
	s.trackOrder(path.Base(s.orderURL))
}

// pendingOrder gives c an order for names whose authorizations are pending.
func (s *negScene) pendingOrder(c *client, names ...string) {
	r := c.post(s.g.base+pathNewOrder, map[string]any{"identifiers": negDNSIDs(names...)})
	if r.status != http.StatusCreated {
		s.t.Fatalf("newOrder: %d %s", r.status, r.body)
	}
	s.orderURL = r.header.Get("Location")
	r.decode(s.t, &s.order)
	s.trackOrder(path.Base(s.orderURL))
}

// issued has c obtain a certificate for names, kept in s.
func (s *negScene) issued(c *client, names ...string) {
	s.certURL, s.leaf, _ = c.issue(names...)
	serial := path.Base(s.certURL)
	s.certs = append(s.certs, serial)
	cert, err := s.g.store.GetCertificate(context.Background(), serial)
	if err != nil {
		s.t.Fatal(err)
	}
	s.trackOrder(cert.OrderID)
}

func (s *negScene) trackOrder(id string) {
	o, err := s.g.store.GetOrder(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	s.orders = append(s.orders, id)
	for _, a := range o.AuthzIDs {
		if !slices.Contains(s.authzs, a) {
			s.authzs = append(s.authzs, a)
		}
	}
}

type negSnapshot struct {
	records         map[string]string
	issued, revoked int
}

// snapshot reads the tracked records through the storage interface.
func (s *negScene) snapshot() negSnapshot {
	t, ctx, st := s.t, context.Background(), storage.Store(s.g.store)
	t.Helper()
	rec := map[string]string{}
	for _, id := range s.accounts {
		a, err := st.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		orders, _, err := st.ListOrders(ctx, id, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		rec["account "+id] = fmt.Sprintf("v%d %s key=%s contact=%v orders=%d", a.Version, a.Status, a.KeyThumbprint, a.Contact, len(orders))
	}
	for _, id := range s.orders {
		o, err := st.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		rec["order "+id] = fmt.Sprintf("v%d %s", o.Version, o.Status)
	}
	for _, id := range s.authzs {
		a, err := st.GetAuthz(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		chs := make([]string, len(a.Challenges))
		for i, c := range a.Challenges {
			chs[i] = c.Status
		}
		rec["authz "+id] = fmt.Sprintf("v%d %s challenges=%v", a.Version, a.Status, chs)
	}
	for _, serial := range s.certs {
		c, err := st.GetCertificate(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		rec["cert "+serial] = fmt.Sprintf("v%d %s", c.Version, c.Status)
	}
	issued, revoked := s.g.issuer.counts()
	return negSnapshot{records: rec, issued: issued, revoked: revoked}
}

// negHeader is the protected header c sends to url: ES256, a fresh nonce, and
// its kid, or its jwk while it has no account. Cases edit it to break it.
func (c *client) negHeader(url string) map[string]any {
	h := map[string]any{"alg": "ES256", "nonce": c.g.nonce(), "url": url}
	if c.kid != "" {
		h["kid"] = c.kid
	} else {
		h["jwk"] = negJWK(c.key)
	}
	return h
}

// negSend posts a JWS by c to url whose protected header edit may change.
func (c *client) negSend(url string, payload any, edit func(h map[string]any)) *reply {
	c.g.t.Helper()
	h := c.negHeader(url)
	if edit != nil {
		edit(h)
	}
	return c.g.send(url, "application/jose+json", negFlatJWS(c.g.t, c.key, h, marshalPayload(c.g.t, payload)))
}

func negJWK(key crypto.Signer) jose.JSONWebKey { return jose.JSONWebKey{Key: key.Public()} }

// negFlatJWS builds a flattened JWS with exactly the protected header hdr,
// signed by key whatever hdr claims: ES256/384/512 for ECDSA keys, RS256
// for RSA keys.
func negFlatJWS(t *testing.T, key crypto.Signer, hdr map[string]any, payload []byte) []byte {
	t.Helper()
	protected, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(protected) + "." + b64(payload)
	return negFlatJSON(b64(protected), b64(payload), b64(negRawSig(t, key, []byte(input))))
}

func negFlatJSON(protected, payload, signature string) []byte {
	b, _ := json.Marshal(map[string]string{"protected": protected, "payload": payload, "signature": signature})
	return b
}

// negRawSig is the JWS signature of input (RFC 7518 §3.3, §3.4).
func negRawSig(t *testing.T, key crypto.Signer, input []byte) []byte {
	t.Helper()
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		hash := map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 66: crypto.SHA512}[size]
		h := hash.New()
		h.Write(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig
	case *rsa.PrivateKey:
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("cannot sign with %T", key)
	return nil
}

// negHMACJWS signs with a shared secret, as no ACME server may accept.
func negHMACJWS(t *testing.T, secret []byte, hdr map[string]any, payload []byte) []byte {
	t.Helper()
	extra := map[jose.HeaderKey]any{}
	for k, v := range hdr {
		if k != "alg" {
			extra[jose.HeaderKey(k)] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, &jose.SignerOptions{ExtraHeaders: extra})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(jws.FullSerialize())
}

// negSplitJWS returns the three members of a flattened JWS.
func negSplitJWS(t *testing.T, body []byte) (protected, payload, signature string) {
	t.Helper()
	var f struct{ Protected, Payload, Signature string }
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	return f.Protected, f.Payload, f.Signature
}

func negDNSIDs(names ...string) []identifier {
	ids := make([]identifier, len(names))
	for i, n := range names {
		ids[i] = identifier{Type: "dns", Value: n}
	}
	return ids
}

func negECKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func negRSAKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// negSelfSigned makes a certificate for names that this server never issued,
// with the given serial.
func negSelfSigned(t *testing.T, serial *big.Int, names ...string) ([]byte, crypto.Signer) {
	t.Helper()
	key := negECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// negGet is a plain GET, as a browser or a confused client sends.
func (g *gateway) negGet(url string) *reply {
	g.t.Helper()
	resp, err := g.srv.Client().Get(url)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// negProtected encodes a protected header as it appears in a JWS.
func negProtected(t *testing.T, hdr map[string]any) string {
	t.Helper()
	b, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}
