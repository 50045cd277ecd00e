package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// rendezvousStore holds GetOrder callers, after their read, until n of them
// have read: racing requests then all see the same version of the order.
// It counts the order updates that lost their compare-and-swap.
type rendezvousStore struct {
	storage.Store
	mu        sync.Mutex
	waiting   int
	release   chan struct{}
	conflicts int
}

func (s *rendezvousStore) UpdateOrder(ctx context.Context, o *storage.Order) error {
	err := s.Store.UpdateOrder(ctx, o)
	if errors.Is(err, storage.ErrConflict) {
		s.mu.Lock()
		s.conflicts++
		s.mu.Unlock()
	}
	return err
}

func (s *rendezvousStore) conflictCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

func (s *rendezvousStore) hold(n int) {
	s.mu.Lock()
	s.waiting, s.release = n, make(chan struct{})
	s.mu.Unlock()
}

func (s *rendezvousStore) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	o, err := s.Store.GetOrder(ctx, id)
	s.mu.Lock()
	ch := s.release
	if ch != nil {
		if s.waiting--; s.waiting == 0 {
			close(ch)
			s.release = nil
		}
	}
	s.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-time.After(5 * time.Second): // let a broken test fail, not hang
		}
	}
	return o, err
}

// signedFinalize builds a finalize request ready to send.
func (c *client) signedFinalize(o orderBody, names ...string) []byte {
	t := c.g.t
	t.Helper()
	csr, _ := csrFor(t, names...)
	payload := marshalPayload(t, map[string]string{"csr": b64(csr)})
	headers := map[jose.HeaderKey]any{"nonce": c.g.nonce(), "url": o.Finalize, "kid": c.kid}
	return sign(t, c.key, c.alg, payload, headers, false)
}

type rawReply struct {
	status int
	body   []byte
	err    error
}

func (r rawReply) problemType() string { return (&reply{body: r.body}).problemType() }

func TestFinalize_ConcurrentRequestsIssueOnce(t *testing.T) {
	g := newGateway(t)
	rv := &rendezvousStore{Store: g.store}
	g.h.store = rv
	c := g.newClient()
	c.register()
	for round := range 3 {
		name := fmt.Sprintf("race%d.example.com", round)
		url, o := c.orderReady(name)
		bodies := [][]byte{c.signedFinalize(o, name), c.signedFinalize(o, name)}
		issuedBefore, _ := g.issuer.counts()
		conflictsBefore := rv.conflictCount()

		rv.hold(len(bodies))
		replies := make([]rawReply, len(bodies))
		var wg sync.WaitGroup
		for i, body := range bodies {
			wg.Go(func() {
				resp, err := http.Post(o.Finalize, "application/jose+json", bytes.NewReader(body))
				if err != nil {
					replies[i].err = err
					return
				}
				defer resp.Body.Close()
				replies[i].status = resp.StatusCode
				replies[i].body, replies[i].err = io.ReadAll(resp.Body)
			})
		}
		wg.Wait()

		var won, lost int
		for _, r := range replies {
			switch {
			case r.err != nil:
				t.Fatalf("round %d: %v", round, r.err)
			case r.status == http.StatusOK:
				won++
			case r.status == http.StatusForbidden && r.problemType() == problemNS+"orderNotReady":
				lost++
			default:
				t.Fatalf("round %d: unexpected answer %d %s", round, r.status, r.body)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won, %d lost; want 1 and 1", round, won, lost)
		}
		// Both read the ready order, so the loser lost the swap.
		if rv.conflictCount() != conflictsBefore+1 {
			t.Fatalf("round %d: %d lost swaps, want 1", round, rv.conflictCount()-conflictsBefore)
		}
		if issued, _ := g.issuer.counts(); issued != issuedBefore+1 {
			t.Fatalf("round %d: %d certificates issued, want 1", round, issued-issuedBefore)
		}
		got, _ := c.readOrder(url)
		if got.Status != storage.StatusValid {
			t.Fatalf("round %d: order is %s", round, got.Status)
		}
		// A finalize after the winner sees the order as it is.
		if r := c.finalizeOrder(o, name); r.status != http.StatusForbidden || r.problemType() != problemNS+"orderNotReady" {
			t.Fatalf("round %d: late finalize: %d %s", round, r.status, r.body)
		}
	}
}

func TestFinalize_IssuerFailureInvalidatesOrder(t *testing.T) {
	const secret = "password=hunter2"
	tests := []struct {
		name       string
		fail       error
		wantType   string
		wantDetail string
	}{
		{"CA refusal is shown to the client", &IssueError{Kind: "badCSR", Detail: "CA policy refuses this key"}, "badCSR", "CA policy refuses this key"},
		{"wrapped CA refusal is shown to the client", fmt.Errorf("cm: %w", &IssueError{Kind: "rejectedIdentifier", Detail: "name not allowed by policy"}), "rejectedIdentifier", "name not allowed by policy"},
		{"other error is hidden", errors.New("CA login failed: " + secret), "serverInternal", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.issuer.mu.Lock()
			g.issuer.fail = tt.fail
			g.issuer.mu.Unlock()
			c := g.newClient()
			c.register()
			name := "refused.example.com"
			url, o := c.orderReady(name)
			r := c.finalizeOrder(o, name)
			if strings.Contains(string(r.body), secret) {
				t.Fatalf("finalize leaked the issuer error: %s", r.body)
			}
			o, r = c.readOrder(url)
			if o.Status != storage.StatusInvalid || o.Error == nil {
				t.Fatalf("order after issuer failure: %s", r.body)
			}
			if o.Error.Type != problemNS+tt.wantType || o.Error.Detail != tt.wantDetail {
				t.Fatalf("order error %s %q, want %s %q", o.Error.Type, o.Error.Detail, tt.wantType, tt.wantDetail)
			}
			if strings.Contains(string(r.body), secret) {
				t.Fatalf("order leaked the issuer error: %s", r.body)
			}
			if o.Certificate != "" {
				t.Fatalf("invalid order names certificate %s", o.Certificate)
			}
			stored, _ := g.store.GetOrder(context.Background(), orderID(url))
			if stored.CSR != nil || stored.IssuerRef != "" {
				t.Fatal("invalid order still keeps its CSR or issuer reference")
			}
			if r := c.finalizeOrder(o, name); r.problemType() != problemNS+"orderNotReady" {
				t.Fatalf("finalize of an invalid order: %d %s", r.status, r.body)
			}
		})
	}
}

// alteringIssuer signs what alter makes of each request, as a CA that
// ignores or rewrites the CSR would, and remembers the serials it issued.
type alteringIssuer struct {
	*testIssuer
	alter func(req *IssueRequest)

	mu      sync.Mutex
	serials []string
}

func (ai *alteringIssuer) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	altered := *req
	ai.alter(&altered)
	chain, err := ai.testIssuer.Issue(ctx, &altered)
	if err == nil {
		ai.mu.Lock()
		ai.serials = append(ai.serials, chain[0].SerialNumber.Text(16))
		ai.mu.Unlock()
	}
	return chain, err
}

func TestFinalize_IssuerCertificateNotMatchingOrderInvalidatesOrder(t *testing.T) {
	names := []string{"a.example.com", "b.example.com"}
	tests := []struct {
		name  string
		alter func(t *testing.T, req *IssueRequest)
	}{
		{"AnotherKey", func(t *testing.T, req *IssueRequest) {
			_, key := csrFor(t, names...)
			req.CSR = &x509.CertificateRequest{PublicKey: key.Public()}
		}},
		{"ExtraName", func(_ *testing.T, req *IssueRequest) { req.Names = append(slices.Clone(req.Names), "evil.example.com") }},
		{"MissingName", func(_ *testing.T, req *IssueRequest) { req.Names = req.Names[:1] }},
		{"OtherName", func(_ *testing.T, req *IssueRequest) { req.Names = []string{"evil.example.com"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			ai := &alteringIssuer{testIssuer: g.issuer, alter: func(req *IssueRequest) { tt.alter(t, req) }}
			g.h.issuer = ai
			c := g.newClient()
			c.register()
			url, o := c.orderReady(names...)

			r := c.finalizeOrder(o, names...)
			var fin orderBody
			r.decode(t, &fin)
			if fin.Status != storage.StatusInvalid || fin.Certificate != "" {
				t.Fatalf("finalize answered %d %s", r.status, r.body)
			}
			o, r = c.readOrder(url)
			if o.Status != storage.StatusInvalid || o.Error == nil || o.Error.Type != problemNS+"serverInternal" || o.Certificate != "" {
				t.Fatalf("order after a mismatching certificate: %s", r.body)
			}
			if issued, _ := g.issuer.counts(); issued != 1 || len(ai.serials) != 1 {
				t.Fatalf("issuer signed %d certificates, want 1", issued)
			}
			serial := ai.serials[0]
			if _, err := g.store.GetCertificate(context.Background(), serial); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("mismatching certificate stored: %v", err)
			}
			if r := c.post(g.base+"/cert/"+serial, nil); r.status != http.StatusNotFound {
				t.Fatalf("mismatching certificate served: %d %s", r.status, r.body)
			}
		})
	}
}

// flakyCertStore fails StoreCertificate with ErrUnavailable the first
// failures times (every time when failures is negative).
type flakyCertStore struct {
	storage.Store
	mu       sync.Mutex
	failures int
	calls    int
}

func (s *flakyCertStore) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	s.mu.Lock()
	s.calls++
	fail := s.failures != 0
	if s.failures > 0 {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("test: %w", storage.ErrUnavailable)
	}
	return s.Store.StoreCertificate(ctx, c, o)
}

func (s *flakyCertStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestFinalize_StoringCertificateIsRetriedAfterTwoFailures(t *testing.T) {
	g := newGateway(t)
	flaky := &flakyCertStore{Store: g.store, failures: 2}
	g.h.store = flaky
	c := g.newClient()
	c.register()
	name := "flaky.example.com"
	url, o := c.orderReady(name)

	r := c.finalizeOrder(o, name)
	var fin orderBody
	r.decode(t, &fin)
	if r.status != http.StatusOK || fin.Status != storage.StatusValid {
		t.Fatalf("finalize with a store failing twice: %d %s", r.status, r.body)
	}
	if flaky.callCount() != 3 {
		t.Fatalf("StoreCertificate called %d times, want 3", flaky.callCount())
	}
	if issued, _ := g.issuer.counts(); issued != 1 {
		t.Fatalf("issued %d certificates, want 1", issued)
	}
	o, _ = c.readOrder(url)
	if leaf := c.downloadLeaf(o.Certificate); !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Fatalf("certificate names %v", leaf.DNSNames)
	}
}

func TestFinalize_StoreThatStaysDownLeavesOrderProcessingWith503(t *testing.T) {
	g := newGateway(t)
	flaky := &flakyCertStore{Store: g.store, failures: -1}
	g.h.store = flaky
	c := g.newClient()
	c.register()
	name := "down.example.com"
	url, o := c.orderReady(name)

	r := c.finalizeOrder(o, name)
	if r.status != http.StatusServiceUnavailable || r.problemType() != problemNS+"serverInternal" {
		t.Fatalf("finalize with storage down: %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if flaky.callCount() < 2 {
		t.Fatalf("StoreCertificate tried %d times; a failing store must be retried", flaky.callCount())
	}
	if o, _ = c.readOrder(url); o.Status != storage.StatusProcessing || o.Certificate != "" {
		t.Fatalf("order is %s (certificate %q), want processing", o.Status, o.Certificate)
	}
	if issued, _ := g.issuer.counts(); issued != 1 {
		t.Fatalf("issued %d certificates, want 1", issued)
	}
}
