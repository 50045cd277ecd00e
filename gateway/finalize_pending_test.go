package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// pendingIssuer is a CA whose outcome is known only later (as CM's after
// a lost answer): Issue answers a
// *PendingError whose Ref names the order, Resume answers pending for
// pendingResumes calls and then signs with the test CA.
type pendingIssuer struct {
	*testIssuer

	mu             sync.Mutex
	requests       map[string]*IssueRequest
	pendingResumes int
	resumes        int
}

func newPendingIssuer(ca *testIssuer, pendingResumes int) *pendingIssuer {
	return &pendingIssuer{testIssuer: ca, requests: map[string]*IssueRequest{}, pendingResumes: pendingResumes}
}

func pendingRef(orderID string) string { return "later-" + orderID }

func (p *pendingIssuer) Issue(_ context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref := pendingRef(req.OrderID)
	p.requests[ref] = req
	return nil, &PendingError{Ref: ref, RetryAfter: 5 * time.Second}
}

func (p *pendingIssuer) Resume(ctx context.Context, _ *IssueRequest, ref string, _ time.Time) ([]*x509.Certificate, error) {
	p.mu.Lock()
	p.resumes++
	req, ok := p.requests[ref]
	if !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("unknown reference %q", ref)
	}
	if p.pendingResumes > 0 {
		p.pendingResumes--
		p.mu.Unlock()
		return nil, &PendingError{Ref: ref, RetryAfter: 5 * time.Second}
	}
	p.mu.Unlock()
	return p.testIssuer.Issue(ctx, req)
}

func (p *pendingIssuer) resumeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resumes
}

var _ Resumer = (*pendingIssuer)(nil)

// pendingOnlyIssuer answers pending but cannot resume: an Issuer that
// breaks the unwritten rule that pending needs Resumer.
type pendingOnlyIssuer struct{ *testIssuer }

func (pendingOnlyIssuer) Issue(_ context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	return nil, &PendingError{Ref: pendingRef(req.OrderID)}
}

// withClock gives the gateway a clock the test moves. It must be called
// before the first request.
func (g *gateway) withClock() *adjustableClock {
	clock := newAdjustableClock(time.Now())
	g.h.now = clock.Now
	return clock
}

func orderID(url string) string { return path.Base(url) }

func (c *client) readOrder(url string) (orderBody, *reply) {
	c.g.t.Helper()
	var o orderBody
	r := c.post(url, nil)
	r.decode(c.g.t, &o)
	return o, r
}

func (c *client) finalizeOrder(o orderBody, names ...string) *reply {
	c.g.t.Helper()
	csr, _ := csrFor(c.g.t, names...)
	return c.post(o.Finalize, map[string]string{"csr": b64(csr)})
}

func (c *client) downloadLeaf(certURL string) *x509.Certificate {
	t := c.g.t
	t.Helper()
	r := c.post(certURL, nil)
	if r.status != http.StatusOK {
		t.Fatalf("download %s: %d %s", certURL, r.status, r.body)
	}
	certs, err := parsePEMChain(r.body)
	if err != nil || len(certs) == 0 {
		t.Fatalf("bad chain %q: %v", r.body, err)
	}
	return certs[0]
}

func TestFinalize_PendingIssuerIsResumedUntilValid(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	pi := newPendingIssuer(g.issuer, 1)
	g.h.issuer = pi
	c := g.newClient()
	c.register()
	name := "later.example.com"
	url, o := c.orderReady(name)

	r := c.finalizeOrder(o, name)
	var fin orderBody
	r.decode(t, &fin)
	if r.status != http.StatusOK || fin.Status != storage.StatusProcessing {
		t.Fatalf("finalize: %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("finalize of a pending order: Retry-After %q", r.header.Get("Retry-After"))
	}
	stored, err := g.store.GetOrder(context.Background(), orderID(url))
	if err != nil {
		t.Fatal(err)
	}
	if stored.IssuerRef != pendingRef(stored.ID) || stored.CSR == nil {
		t.Fatalf("stored order keeps ref %q and CSR %v", stored.IssuerRef, stored.CSR != nil)
	}

	// Polled at once, the order waits: the CA is not asked again.
	o, r = c.readOrder(url)
	if o.Status != storage.StatusProcessing || pi.resumeCount() != 0 {
		t.Fatalf("order polled at once: %s, %d resumes", o.Status, pi.resumeCount())
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatal("processing order without Retry-After")
	}

	// Past the resume interval the CA is asked; it still waits.
	clock.Advance(2 * time.Second)
	if o, _ = c.readOrder(url); o.Status != storage.StatusProcessing || pi.resumeCount() != 1 {
		t.Fatalf("after first resume: %s, %d resumes", o.Status, pi.resumeCount())
	}
	if o, _ = c.readOrder(url); pi.resumeCount() != 1 {
		t.Fatalf("polled again within the interval: %s, %d resumes", o.Status, pi.resumeCount())
	}

	// Next time the CA has signed.
	clock.Advance(2 * time.Second)
	o, _ = c.readOrder(url)
	if o.Status != storage.StatusValid || o.Certificate == "" || pi.resumeCount() != 2 {
		t.Fatalf("once the CA answered: %+v, %d resumes", o, pi.resumeCount())
	}
	if issued, _ := g.issuer.counts(); issued != 1 {
		t.Fatalf("%d certificates signed, want 1", issued)
	}
	if leaf := c.downloadLeaf(o.Certificate); !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Fatalf("certificate names %v", leaf.DNSNames)
	}
	stored, _ = g.store.GetOrder(context.Background(), orderID(url))
	if stored.IssuerRef != "" || stored.CSR != nil {
		t.Fatalf("valid order still keeps ref %q / CSR", stored.IssuerRef)
	}
}

// putProcessing leaves an order in processing with its CSR and no issuer
// reference, as a process that stopped in the middle of Issue leaves it.
func (g *gateway) putProcessing(id string, csr []byte, at time.Time) {
	g.t.Helper()
	o, err := g.store.GetOrder(context.Background(), id)
	if err != nil {
		g.t.Fatal(err)
	}
	o.Status = storage.StatusProcessing
	o.CSR = csr
	o.UpdatedAt = at
	if err := g.store.UpdateOrder(context.Background(), o); err != nil {
		g.t.Fatal(err)
	}
}

func TestFinalize_StaleProcessingIsResumedOnce(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	c := g.newClient()
	c.register()
	name := "crashed.example.com"
	url, _ := c.orderReady(name)
	csr, _ := csrFor(t, name)
	g.putProcessing(orderID(url), csr, clock.Now())

	clock.Advance(staleProcessing - time.Second)
	if o, _ := c.readOrder(url); o.Status != storage.StatusProcessing {
		t.Fatalf("order resumed before staleProcessing: %s", o.Status)
	}
	if issued, _ := g.issuer.counts(); issued != 0 {
		t.Fatalf("issued %d before staleProcessing", issued)
	}

	clock.Advance(time.Second)
	o, _ := c.readOrder(url)
	if o.Status != storage.StatusValid || o.Certificate == "" {
		t.Fatalf("stale order not resumed: %+v", o)
	}
	if leaf := c.downloadLeaf(o.Certificate); !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Fatalf("certificate names %v", leaf.DNSNames)
	}
	clock.Advance(staleProcessing)
	if o, _ = c.readOrder(url); o.Status != storage.StatusValid {
		t.Fatalf("valid order became %s", o.Status)
	}
	if issued, _ := g.issuer.counts(); issued != 1 {
		t.Fatalf("issued %d, want 1", issued)
	}
}

// TestFinalize_PendingWithoutResumerDoesNotStickForever: an issuer
// answering *PendingError with a reference it cannot resume (it is no
// Resumer) fails the order rather than leaving it processing for good.
func TestFinalize_PendingWithoutResumerDoesNotStickForever(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	g.h.issuer = pendingOnlyIssuer{g.issuer}
	c := g.newClient()
	c.register()
	name := "stuck.example.com"
	url, o := c.orderReady(name)
	c.finalizeOrder(o, name)
	clock.Advance(30 * time.Minute)
	if o, _ = c.readOrder(url); o.Status == storage.StatusProcessing {
		t.Fatalf("order answered pending by a non-Resumer issuer is still processing after 30m")
	}
}

// failOnceStore fails the first StoreCertificate with ErrUnavailable.
type failOnceStore struct {
	storage.Store
	mu     sync.Mutex
	failed bool
}

func (s *failOnceStore) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	s.mu.Lock()
	fail := !s.failed
	s.failed = true
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("test: %w", storage.ErrUnavailable)
	}
	return s.Store.StoreCertificate(ctx, c, o)
}

// TestFinalize_ResumeThatFailsToStoreShowsStoredOrder: when a resumed
// issuance cannot be stored, reading the order answers what storage holds
// (processing), never a valid order whose certificate URL does not exist;
// completeIssuance works on a copy of the order.
func TestFinalize_ResumeThatFailsToStoreShowsStoredOrder(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	g.h.store = &failOnceStore{Store: g.store}
	c := g.newClient()
	c.register()
	name := "store-fails.example.com"
	url, _ := c.orderReady(name)
	csr, _ := csrFor(t, name)
	g.putProcessing(orderID(url), csr, clock.Now())
	clock.Advance(staleProcessing)

	o, _ := c.readOrder(url)
	stored, err := g.store.GetOrder(context.Background(), orderID(url))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != stored.Status {
		if r := c.post(o.Certificate, nil); o.Status == storage.StatusValid && r.status == http.StatusNotFound {
			t.Fatalf("order answered %s with certificate %s (404) while stored %s", o.Status, o.Certificate, stored.Status)
		}
		t.Fatalf("order answered %s, stored %s", o.Status, stored.Status)
	}
	// Once storage is back, the next stale period issues again.
	clock.Advance(staleProcessing)
	if o, _ = c.readOrder(url); o.Status != storage.StatusValid {
		t.Fatalf("order not valid after storage came back: %s", o.Status)
	}
	c.downloadLeaf(o.Certificate)
}
