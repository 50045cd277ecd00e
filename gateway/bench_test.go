package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

// The benchmarks run whole issuances through the handler over HTTP, with
// the harness's test doubles for the CA and the validator. The harness
// helpers take *testing.T, so the benchmark has its own small client that
// returns errors instead (b.Fatal may not be called from RunParallel's
// goroutines); it reuses the Replay-Nonce of each answer, as real clients
// do, rather than asking newNonce before every request.

// benchGateway is a Server served by httptest for benchmarks.
type benchGateway struct {
	base   string
	client *http.Client
	store  *countingStore
	names  atomic.Int64
}

func newBenchGateway(b *testing.B) *benchGateway {
	b.Helper()
	nonces, err := NewNonceStore(time.Hour, 100_000, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := newTestCA()
	if err != nil {
		b.Fatal(err)
	}
	store := &countingStore{Store: memory.New()}
	h, err := New(Config{
		PathPrefix:  "/acme",
		Store:       store,
		Nonces:      nonces,
		Issuer:      newRecordlessIssuer(ca, 0), // as the default, the local CA
		Validator:   &testValidator{},
		Validations: NewValidationPool(64),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024 // one kept-alive connection per worker
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		_ = h.validating.Stop()
	})
	return &benchGateway{base: srv.URL + h.cfg.PathPrefix, client: &http.Client{Transport: tr}, store: store}
}

// benchClient is one ACME client; not safe for concurrent use.
type benchClient struct {
	gw     *benchGateway
	key    *ecdsa.PrivateKey
	csrKey *ecdsa.PrivateKey
	kid    string
	nonce  string
}

func (gw *benchGateway) newClient() (*benchClient, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csrKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &benchClient{gw: gw, key: key, csrKey: csrKey}
	r, err := c.post(gw.base+pathNewAccount, map[string]any{"termsOfServiceAgreed": true})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusCreated {
		return nil, fmt.Errorf("newAccount: %d %s", r.status, r.body)
	}
	c.kid = r.header.Get("Location")
	return c, nil
}

func (c *benchClient) freshNonce() error {
	resp, err := c.gw.client.Head(c.gw.base + pathNewNonce)
	if err != nil {
		return err
	}
	resp.Body.Close()
	c.nonce = resp.Header.Get("Replay-Nonce")
	return nil
}

// post sends payload (nil for POST-as-GET) signed by the client's key, and
// retries once on badNonce as RFC 8555 §6.5 asks clients to.
func (c *benchClient) post(url string, payload any) (*reply, error) {
	body := []byte{}
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		if c.nonce == "" {
			if err := c.freshNonce(); err != nil {
				return nil, err
			}
		}
		opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"nonce": c.nonce, "url": url}}
		if c.kid == "" {
			opts.EmbedJWK = true
		} else {
			opts.ExtraHeaders["kid"] = c.kid
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key}, opts)
		if err != nil {
			return nil, err
		}
		jws, err := signer.Sign(body)
		if err != nil {
			return nil, err
		}
		resp, err := c.gw.client.Post(url, "application/jose+json", bytes.NewReader([]byte(jws.FullSerialize())))
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		c.nonce = resp.Header.Get("Replay-Nonce")
		r := &reply{status: resp.StatusCode, header: resp.Header, body: b}
		if attempt == 0 && r.problemType() == problemNS+"badNonce" {
			continue
		}
		return r, nil
	}
}

func (c *benchClient) postDecode(url string, payload any, want int, v any) (*reply, error) {
	r, err := c.post(url, payload)
	if err != nil {
		return nil, err
	}
	if r.status != want {
		return nil, fmt.Errorf("POST %s: %d %s", url, r.status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// issue runs one whole issuance for a name never used before, so that no
// authorization is reused: newOrder, authz read, challenge, polling the
// authz until valid, finalize, and download.
func (c *benchClient) issue() error {
	name := fmt.Sprintf("h%d.bench.example", c.gw.names.Add(1))
	var o orderBody
	r, err := c.postDecode(c.gw.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: name}}}, http.StatusCreated, &o)
	if err != nil {
		return err
	}
	orderURL := r.header.Get("Location")
	authzURL := o.Authorizations[0]
	var a authzBody
	if _, err := c.postDecode(authzURL, nil, http.StatusOK, &a); err != nil {
		return err
	}
	var ch challengeBody
	if _, err := c.postDecode(a.Challenges[0].URL, map[string]any{}, http.StatusOK, &ch); err != nil {
		return err
	}
	// The answer carries the outcome when validation was quick.
	for wait := 50 * time.Microsecond; ch.Status != storage.StatusValid; wait *= 2 {
		if _, err := c.postDecode(authzURL, nil, http.StatusOK, &a); err != nil {
			return err
		}
		if a.Status == storage.StatusValid {
			break
		}
		if a.Status != storage.StatusPending || wait > time.Second {
			return fmt.Errorf("authz %s is %s", authzURL, a.Status)
		}
		time.Sleep(wait)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, c.csrKey)
	if err != nil {
		return err
	}
	if _, err := c.postDecode(o.Finalize, map[string]string{"csr": b64(csr)}, http.StatusOK, &o); err != nil {
		return err
	}
	for o.Status == storage.StatusProcessing {
		time.Sleep(time.Millisecond)
		if _, err := c.postDecode(orderURL, nil, http.StatusOK, &o); err != nil {
			return err
		}
	}
	if o.Status != storage.StatusValid {
		return fmt.Errorf("order %s is %s", orderURL, o.Status)
	}
	r, err = c.postDecode(o.Certificate, nil, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(r.body, []byte("-----BEGIN CERTIFICATE-----")) {
		return fmt.Errorf("download: %q", r.body)
	}
	return nil
}

func reportIssuanceRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "issuances/s")
	}
}

func BenchmarkIssuance(b *testing.B) {
	gw := newBenchGateway(b)
	c, err := gw.newClient()
	if err != nil {
		b.Fatal(err)
	}
	reads, writes := gw.store.reads.Load(), gw.store.writes.Load()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.issue(); err != nil {
			b.Fatal(err)
		}
	}
	reportIssuanceRate(b)
	gw.store.report(b, reads, writes)
}

func BenchmarkIssuanceParallel(b *testing.B) {
	gw := newBenchGateway(b)
	// One account per worker, registered before the clock starts.
	clients := make([]*benchClient, runtime.GOMAXPROCS(0))
	for i := range clients {
		c, err := gw.newClient()
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	var next atomic.Int64
	reads, writes := gw.store.reads.Load(), gw.store.writes.Load()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[next.Add(1)-1]
		for pb.Next() {
			if err := c.issue(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportIssuanceRate(b)
	gw.store.report(b, reads, writes)
}
