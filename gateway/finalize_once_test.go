package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// recordlessTestIssuer is the test CA posing as one that keeps no record
// of what it signs, as the local CA does. With arrivals set, each Issue
// call waits (up to a few seconds) until that many calls have arrived, so
// that racing requests are all inside the issuer at once.
type recordlessTestIssuer struct {
	*testIssuer
	arrivals int

	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newRecordlessIssuer(ca *testIssuer, arrivals int) *recordlessTestIssuer {
	return &recordlessTestIssuer{testIssuer: ca, arrivals: arrivals, all: make(chan struct{})}
}

func (ri *recordlessTestIssuer) KeepsNoRecord() {}

func (ri *recordlessTestIssuer) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	ri.mu.Lock()
	ri.arrived++
	if ri.arrived == ri.arrivals {
		close(ri.all)
	}
	ri.mu.Unlock()
	if ri.arrivals > 0 {
		select {
		case <-ri.all:
		case <-time.After(5 * time.Second):
		}
	}
	return ri.testIssuer.Issue(ctx, req)
}

var _ RecordlessIssuer = (*recordlessTestIssuer)(nil)

// finalizeWrites finalizes a ready order and returns the order as answered
// and the number of record writes the finalize request made.
func finalizeWrites(t *testing.T, g *gateway) (orderBody, int64) {
	t.Helper()
	counted := &countingStore{Store: g.store}
	g.h.store = counted
	c := g.newClient()
	c.register()
	_, o := c.orderReady("once.example.com")
	before := counted.writes.Load()
	r := c.finalizeOrder(o, "once.example.com")
	if r.status != http.StatusOK {
		t.Fatalf("finalize: %d %s", r.status, r.body)
	}
	var fin orderBody
	r.decode(t, &fin)
	return fin, counted.writes.Load() - before
}

func TestFinalize_RecordlessIssuerStoresTheOutcomeOnly(t *testing.T) {
	g := newGateway(t)
	g.h.issuer = newRecordlessIssuer(g.issuer, 0)
	fin, writes := finalizeWrites(t, g)
	if fin.Status != storage.StatusValid || fin.Certificate == "" {
		t.Fatalf("finalized order: %+v", fin)
	}
	if writes != 1 {
		t.Fatalf("finalize with a recordless issuer wrote %d times, want 1 (certificate and order together)", writes)
	}

	// An issuer that keeps records (CM) has the order stored as processing
	// before it is called, so that an issuance left behind is found again.
	g = newGateway(t)
	if _, writes := finalizeWrites(t, g); writes != 2 {
		t.Fatalf("finalize with a recording issuer wrote %d times, want 2", writes)
	}
}

func TestFinalize_RecordlessRaceStoresOneCertificate(t *testing.T) {
	g := newGateway(t)
	g.h.issuer = newRecordlessIssuer(g.issuer, 2)
	c := g.newClient()
	c.register()
	url, o := c.orderReady("race.example.com")

	// Both requests are signed first, each with its own nonce, then sent
	// at once.
	csr, _ := csrFor(t, "race.example.com")
	var bodies [2][]byte
	for i := range bodies {
		headers := map[jose.HeaderKey]any{"nonce": g.nonce(), "url": o.Finalize, "kid": c.kid}
		bodies[i] = sign(t, c.key, c.alg, marshalPayload(t, map[string]string{"csr": b64(csr)}), headers, false)
	}
	var wg sync.WaitGroup
	replies := make([]*reply, len(bodies))
	errs := make([]error, len(bodies))
	for i, body := range bodies {
		wg.Go(func() {
			resp, err := g.srv.Client().Post(o.Finalize, "application/jose+json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			replies[i] = &reply{status: resp.StatusCode, header: resp.Header, body: b}
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch {
		case r.status == http.StatusOK:
			won++
		case r.status == http.StatusForbidden && r.problemType() == problemNS+"orderNotReady":
			lost++
		default:
			t.Fatalf("finalize %d: %d %s", i, r.status, r.body)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d finalize requests won and %d lost, want 1 and 1", won, lost)
	}
	if issued, _ := g.issuer.counts(); issued != 2 {
		t.Fatalf("issuer signed %d certificates, want 2 (both requests raced into it)", issued)
	}

	final, _ := c.readOrder(url)
	if final.Status != storage.StatusValid {
		t.Fatalf("order after the race: %s", final.Status)
	}
	certs, _, err := g.store.ListCertificates(context.Background(), storage.CertificateFilter{}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("%d certificates stored, want 1", len(certs))
	}
	if leaf := c.downloadLeaf(final.Certificate); leaf.SerialNumber.Text(16) != certs[0].Serial {
		t.Fatalf("order's certificate %s is not the one stored (%s)", leaf.SerialNumber.Text(16), certs[0].Serial)
	}
}
