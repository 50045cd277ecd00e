package gateway

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// blockingResumer issues only when released, and counts its calls; it is
// a Resumer, as the cm issuer is. Resume reports what it was asked and
// answers found (the certificate) or not found (a refusal).
type blockingResumer struct {
	*testIssuer
	calls   atomic.Int32
	release chan struct{}

	found       bool
	resumeRef   string
	resumeSince time.Time
	resumes     atomic.Int32
}

func (b *blockingResumer) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	b.calls.Add(1)
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.testIssuer.Issue(ctx, req)
}

func (b *blockingResumer) Resume(ctx context.Context, req *IssueRequest, ref string, since time.Time) ([]*x509.Certificate, error) {
	b.resumes.Add(1)
	b.resumeRef, b.resumeSince = ref, since
	if b.found {
		return b.testIssuer.Issue(ctx, req)
	}
	return nil, &IssueError{Kind: "serverInternal", Detail: "the CA holds no certificate for the request"}
}

// processingOrder makes a ready order and puts it into processing with
// its CSR, as finalize leaves it, with the given issuer reference.
func processingOrder(t *testing.T, g *gateway, ref string, since time.Time) *storage.Order {
	t.Helper()
	c := g.newClient()
	c.register()
	url, _ := c.orderReady("resume.example.com")
	ctx := context.Background()
	o, err := g.store.GetOrder(ctx, path.Base(url))
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := csrFor(t, "resume.example.com")
	o.Status, o.CSR, o.IssuerRef, o.UpdatedAt = storage.StatusProcessing, csr, ref, since
	if err := g.store.UpdateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestResume_RetryFromCSRIsClaimedByOneAttempt(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	issuer := &blockingResumer{testIssuer: g.issuer, release: make(chan struct{})}
	g.h.issuer = issuer
	o := processingOrder(t, g, retryFromCSR, clock.Now().Add(-time.Minute))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.h.resumeIfStale(context.Background(), o, nil)
	}()
	for issuer.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// While the first attempt waits at the CA, a later poll must not send
	// the request again.
	clock.Advance(2 * pendingRetry)
	again, _ := g.store.GetOrder(context.Background(), o.ID)
	if again.IssuerRef != "" {
		t.Fatalf("claimed order still says %q", again.IssuerRef)
	}
	g.h.resumeIfStale(context.Background(), again, nil)
	if n := issuer.calls.Load(); n != 1 {
		t.Fatalf("issuer called %d times while the first call ran", n)
	}
	close(issuer.release)
	wg.Wait()
	final, _ := g.store.GetOrder(context.Background(), o.ID)
	if final.Status != storage.StatusValid {
		t.Fatalf("order is %s", final.Status)
	}
}

// A request left behind mid-way by a process that stopped is never sent
// again to a CA that keeps what it signs: the issuer is asked what became
// of it since the order was stored processing, and the order ends as it
// answers.
func TestResume_UnknownOutcomeAtAResumerIsAskedNotReissued(t *testing.T) {
	for _, found := range []bool{false, true} {
		t.Run(map[bool]string{false: "NotFoundFails", true: "FoundIsDelivered"}[found], func(t *testing.T) {
			g := newGateway(t)
			clock := g.withClock()
			issuer := &blockingResumer{testIssuer: g.issuer, release: make(chan struct{}), found: found}
			close(issuer.release)
			g.h.issuer = issuer
			since := clock.Now()
			o := processingOrder(t, g, "", since)
			clock.Advance(staleProcessing + time.Second)

			got, _ := g.h.resumeIfStale(context.Background(), o, nil)
			if issuer.calls.Load() != 0 || issuer.resumes.Load() != 1 {
				t.Fatalf("%d issue calls and %d resumes; want none and one", issuer.calls.Load(), issuer.resumes.Load())
			}
			if issuer.resumeRef != "" || !issuer.resumeSince.Equal(since.UTC()) {
				t.Fatalf("resumed with ref %q since %v, want no ref since %v", issuer.resumeRef, issuer.resumeSince, since)
			}
			if found {
				if got.Status != storage.StatusValid || got.CertificateSerial == "" {
					t.Fatalf("order %s, want valid with its certificate", got.Status)
				}
				return
			}
			if got.Status != storage.StatusInvalid {
				t.Fatalf("order %s, want invalid", got.Status)
			}
			if p := storedProblem(got.Error); p == nil || p.Type != problemNS+"serverInternal" {
				t.Fatalf("order error %s", got.Error)
			}
		})
	}
}

// A CSR stored before the CSR policy held it (kept over an upgrade) is
// held to it before it reaches the issuer again.
func TestResume_StoredCSRMeetsTheCSRPolicy(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	ctx := context.Background()
	o := processingOrder(t, g, retryFromCSR, clock.Now().Add(-time.Minute))
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"Example AB"}}, DNSNames: []string{"resume.example.com"}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	o.CSR = der
	if err := g.store.UpdateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	g.h.resumeIfStale(ctx, o, nil)
	final, err := g.store.GetOrder(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != storage.StatusInvalid || !strings.Contains(string(final.Error), "badCSR") {
		t.Fatalf("order %s, error %s; want invalid with badCSR", final.Status, final.Error)
	}
	if issued, _ := g.issuer.counts(); issued != 0 {
		t.Fatalf("issued %d from a CSR outside the policy", issued)
	}
}
