package caddyacmegw

import (
	"context"
	"crypto/x509"
	"path"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// blockingResumer issues only when released, and counts its calls; it is
// a Resumer, as the cm issuer is.
type blockingResumer struct {
	*testIssuer
	calls   atomic.Int32
	release chan struct{}
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

func (b *blockingResumer) Resume(context.Context, string) ([]*x509.Certificate, error) {
	return nil, &PendingError{Ref: "x"}
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

func TestResume_UnknownOutcomeAtAResumerFailsInsteadOfReissuing(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	issuer := &blockingResumer{testIssuer: g.issuer, release: make(chan struct{})}
	close(issuer.release)
	g.h.issuer = issuer
	o := processingOrder(t, g, "", clock.Now())
	clock.Advance(staleProcessing + time.Second)

	got, _ := g.h.resumeIfStale(context.Background(), o, nil)
	if got.Status != storage.StatusInvalid || issuer.calls.Load() != 0 {
		t.Fatalf("order %s after %d issue calls; want invalid and none", got.Status, issuer.calls.Load())
	}
	if p := storedProblem(got.Error); p == nil || p.Type != problemNS+"serverInternal" {
		t.Fatalf("order error %s", got.Error)
	}
}
