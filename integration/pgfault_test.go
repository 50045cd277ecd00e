package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// faultWorkers is how many acmez clients issue at once in the fault test.
const faultWorkers = 8

// PostgreSQL stopped and started again under a load of concurrent
// clients. While it is down, requests that need it are answered 503
// serverInternal with Retry-After (and nothing answers 500); resources
// that need no database (directory, new-nonce) keep working. Afterwards
// every account and certificate a client was told about is in the
// database, no order has two certificates, an order left processing by the
// outage is finished once it is stale and read, and issuance works again.
func TestPostgresFault_RestartDuringLoad(t *testing.T) {
	dsn := pgtest.Start(t)
	dns := startDNS(t)
	g := startCaddy(t, fmt.Sprintf(`
		storage postgres "%s"
		challenges dns-01
		resolvers %s
	`, dsn, dns.Addr()))
	e := newACMEEnv(g, dns, nil)
	base := strings.TrimSuffix(g.Directory, "/directory")

	load := &faultLoad{
		accounts: map[string]*ecdsa.PrivateKey{},
		orders:   map[string]string{},
		issued:   map[string]string{},
	}
	ctx, stopLoad := context.WithTimeout(context.Background(), 90*time.Second)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range faultWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.work(ctx, e, w)
		}()
	}
	stopped := false
	stopWorkers := func() {
		if !stopped {
			stopped = true
			stopLoad()
			wg.Wait()
		}
	}
	defer stopWorkers()

	waitFor(t, 30*time.Second, "8 certificates before the outage", func() bool { return load.issuedCount() >= 8 })

	pgtest.StopServer(t)
	load.down.Store(true)
	outage := time.Now()
	t.Logf("database stopped after %d certificates", load.issuedCount())

	// A request that needs the database, from an account that exists.
	acctURL, key := load.anyAccount()
	resp := postJWS(t, g, key, acctURL, base+"/new-order", []byte(`{"identifiers":[{"type":"dns","value":"probe.example.com"}]}`))
	if resp.Status != http.StatusServiceUnavailable || problemType(resp.Body) != "urn:ietf:params:acme:error:serverInternal" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("new order during the outage: HTTP %d, Retry-After %q, %s; want 503 serverInternal with Retry-After",
			resp.Status, resp.Header.Get("Retry-After"), resp.Body)
	}
	// Nonces need no database: clients still get one to retry with.
	if _, err := freshNonce(g.HTTPClient(), base+"/new-nonce"); err != nil {
		t.Errorf("new nonce during the outage: %v", err)
	}
	waitFor(t, 15*time.Second, "a client to see 503 during the outage", func() bool {
		return load.unavailableWhileDown.Load() > 0 && time.Since(outage) > 2*time.Second
	})

	pgtest.StartServer(t)
	load.down.Store(false)
	before := load.issuedCount()
	t.Logf("database started again after %s; clients saw %d 503 problems", time.Since(outage).Round(time.Millisecond), load.unavailableWhileDown.Load())
	waitFor(t, 45*time.Second, "8 more certificates after the restart", func() bool { return load.issuedCount() >= before+8 })
	stopWorkers()

	load.mu.Lock()
	defer load.mu.Unlock()
	for _, err := range load.serverErrors {
		t.Errorf("a client got a server error that is not 503 serverInternal: %v", err)
	}
	for _, err := range load.brokenPromises {
		t.Errorf("%v", err)
	}
	t.Logf("%d accounts, %d orders, %d certificates; %d failed calls (%d of them 503)",
		len(load.accounts), len(load.orders), len(load.issued), load.failures, load.unavailable)

	db := pgConnect(t, dsn)
	accountIDs := make([]string, 0, len(load.accounts))
	for u := range load.accounts {
		accountIDs = append(accountIDs, lastSegment(u))
	}
	var n int
	if err := db.QueryRow(dbCtx(t), "SELECT count(*) FROM accounts WHERE id = ANY($1)", accountIDs).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(accountIDs) {
		t.Errorf("database holds %d of the %d accounts clients were given", n, len(accountIDs))
	}
	for serial, orderURL := range load.issued {
		var orderID, status, orderSerial string
		err := db.QueryRow(dbCtx(t), `SELECT c.order_id, o.status, o.certificate_serial
			FROM certificates c JOIN orders o ON o.namespace = c.namespace AND o.id = c.order_id
			WHERE c.serial = $1`, serial).Scan(&orderID, &status, &orderSerial)
		if err != nil {
			t.Errorf("certificate %s, given to a client: %v", serial, err)
			continue
		}
		if orderID != lastSegment(orderURL) || status != "valid" || orderSerial != serial {
			t.Errorf("certificate %s: order %s (%s, certificate %q), want order %s valid with it",
				serial, orderID, status, orderSerial, lastSegment(orderURL))
		}
	}
	if err := db.QueryRow(dbCtx(t), `SELECT count(*) FROM (SELECT order_id FROM certificates
		GROUP BY namespace, order_id HAVING count(*) > 1) twice`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d orders have more than one certificate (%v)", n, err)
	}

	// An order whose finalize lost the database between its move to
	// processing and the certificate's storing stays processing until
	// staleProcessing has passed; then the next read issues it. Make
	// that time pass in the database, and read each such order.
	rows, err := db.Query(dbCtx(t), "SELECT id FROM orders WHERE status = 'processing'")
	if err != nil {
		t.Fatal(err)
	}
	var processing []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		processing = append(processing, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders left processing by the outage", len(processing))
	if len(processing) > 0 {
		if _, err := db.Exec(dbCtx(t), "UPDATE orders SET updated_at = updated_at - interval '3 minutes' WHERE status = 'processing'"); err != nil {
			t.Fatal(err)
		}
	}
	client, _ := acmezClient(e, acme.ChallengeTypeDNS01)
	for _, id := range processing {
		orderURL := base + "/order/" + id
		owner, ok := load.orders[orderURL]
		if !ok {
			t.Errorf("order %s is processing, but no client made it", id)
			continue
		}
		acct := acme.Account{Location: owner, PrivateKey: load.accounts[owner]}
		var got acme.Order
		waitFor(t, 20*time.Second, "order "+id+" to leave processing", func() bool {
			got, err = client.GetOrder(t.Context(), acct, acme.Order{Location: orderURL})
			return err == nil && got.Status != acme.StatusProcessing
		})
		if got.Status != acme.StatusValid || got.Certificate == "" {
			t.Errorf("resumed order %s is %s (certificate %q, error %v)", id, got.Status, got.Certificate, got.Error)
		}
	}
	if err := db.QueryRow(dbCtx(t), "SELECT count(*) FROM orders WHERE status = 'processing'").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d orders still processing (%v)", n, err)
	}
	if err := db.QueryRow(dbCtx(t), `SELECT count(*) FROM orders o WHERE status = 'valid' AND NOT EXISTS
		(SELECT 1 FROM certificates c WHERE c.namespace = o.namespace AND c.serial = o.certificate_serial AND c.order_id = o.id)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d valid orders without their certificate (%v)", n, err)
	}

	// And a new client issues, first time.
	acct := acmezAccount(t, client)
	chain, _ := acmezObtain(t, client, acct, "after.fault.example.com")
	checkChain(t, g, chain, "after.fault.example.com")
}

// faultLoad is what the clients of the fault test were told, and the
// failures they met.
type faultLoad struct {
	down                 atomic.Bool  // the database is stopped
	unavailableWhileDown atomic.Int64 // 503 problems met while it was

	mu       sync.Mutex
	accounts map[string]*ecdsa.PrivateKey // account URL → key
	orders   map[string]string            // order URL → account URL
	issued   map[string]string            // certificate serial → order URL
	// failures counts failed calls; unavailable those that were 503
	// serverInternal problems.
	failures, unavailable int
	// serverErrors are 5xx answers other than 503 serverInternal.
	serverErrors []error
	// brokenPromises are answers that contradict each other.
	brokenPromises []error
}

// work issues certificates for new names, one after the other, as one
// account, until ctx ends. A failed call ends the issuance; the next
// starts with a new order.
func (l *faultLoad) work(ctx context.Context, e *acmeEnv, w int) {
	c := &acmez.Client{Client: &acme.Client{
		Directory:    e.G.Directory,
		HTTPClient:   e.G.HTTPClient(),
		PollInterval: 20 * time.Millisecond,
		PollTimeout:  5 * time.Second,
	}}
	var acct acme.Account
	for n := 0; ctx.Err() == nil; n++ {
		if acct.Location == "" {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			a, err := c.NewAccount(ctx, acme.Account{TermsOfServiceAgreed: true, PrivateKey: key})
			if l.failed(ctx, err) {
				continue
			}
			l.mu.Lock()
			l.accounts[a.Location] = key
			l.mu.Unlock()
			acct = a
		}
		name := fmt.Sprintf("w%d-%d.fault.example.com", w, n)
		order, err := c.NewOrder(ctx, acct, acme.Order{Identifiers: dnsIdentifiers([]string{name})})
		if l.failed(ctx, err) {
			continue
		}
		l.mu.Lock()
		l.orders[order.Location] = acct.Location
		l.mu.Unlock()
		if l.failed(ctx, authorizeDNS01(ctx, e, c, acct, order)) {
			continue
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		csr, err := acmez.NewCSR(key, []string{name})
		if err != nil {
			panic(err)
		}
		order, err = c.FinalizeOrder(ctx, acct, order, csr.Raw)
		if l.failed(ctx, err) {
			continue
		}
		if order.Status != acme.StatusValid || order.Certificate == "" {
			l.broken(fmt.Errorf("finalize of %s answered %s without error, certificate %q", order.Location, order.Status, order.Certificate))
			continue
		}
		serial := lastSegment(order.Certificate)
		l.mu.Lock()
		l.issued[serial] = order.Location
		l.mu.Unlock()
		chains, err := c.GetCertificateChain(ctx, acct, order.Certificate)
		if l.failed(ctx, err) {
			continue
		}
		if got, err := leafSerial(chains[0].ChainPEM); err != nil || got != serial {
			l.broken(fmt.Errorf("certificate URL %s serves serial %s (%v)", order.Certificate, got, err))
		}
	}
}

// failed records err, if any, and says whether there was one; it pauses
// the worker briefly after a failure.
func (l *faultLoad) failed(ctx context.Context, err error) bool {
	if err == nil {
		return false
	}
	if ctx.Err() != nil {
		return true // the load is over; not a finding
	}
	var p acme.Problem
	isP := errors.As(err, &p)
	unavailable := isP && p.Status == http.StatusServiceUnavailable && p.Type == "urn:ietf:params:acme:error:serverInternal"
	if unavailable && l.down.Load() {
		l.unavailableWhileDown.Add(1)
	}
	l.mu.Lock()
	l.failures++
	if unavailable {
		l.unavailable++
	} else if isP && p.Status >= 500 {
		l.serverErrors = append(l.serverErrors, err)
	}
	l.mu.Unlock()
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	return true
}

func (l *faultLoad) broken(err error) {
	l.mu.Lock()
	l.brokenPromises = append(l.brokenPromises, err)
	l.mu.Unlock()
}

func (l *faultLoad) issuedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.issued)
}

// anyAccount is one of the accounts made so far, the first in URL order.
func (l *faultLoad) anyAccount() (string, *ecdsa.PrivateKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := slices.Sorted(maps.Keys(l.accounts))[0]
	return u, l.accounts[u]
}

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
