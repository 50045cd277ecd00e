package caddyacmegw

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

// Tests for the fixes made after review. The negative suite holds the
// cases that end in a problem and change nothing (notBefore too far back,
// revocation of a nameless certificate, a full validation queue).

func TestAccount_UpdateWithWholeAccountAndCurrentStatusChangesNothing(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	ctx := context.Background()
	before, err := g.store.GetAccount(ctx, orderID(c.kid))
	if err != nil {
		t.Fatal(err)
	}
	var read map[string]any
	c.post(c.kid, nil).decode(t, &read)
	if read["status"] != storage.StatusValid {
		t.Fatalf("account reads %v", read)
	}

	// Clients such as lego post back the account object they read.
	r := c.post(c.kid, read)
	if r.status != http.StatusOK {
		t.Fatalf("posting the account back: %d %s", r.status, r.body)
	}
	var updated map[string]any
	r.decode(t, &updated)
	if !reflect.DeepEqual(updated, read) {
		t.Fatalf("account changed:\nread    %v\nupdated %v", read, updated)
	}
	after, err := g.store.GetAccount(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != before.Status || after.KeyThumbprint != before.KeyThumbprint || !slices.Equal(after.Contact, before.Contact) {
		t.Fatalf("stored account moved from %+v to %+v", before, after)
	}
}

// rootHandler is a Handler built as newGateway builds one, at the root.
func rootHandler(t *testing.T) *Handler {
	t.Helper()
	nonces, err := newNonceStore(time.Hour, 1000, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{
		PathPrefix: "/",
		store:      memory.New(),
		nonces:     nonces,
		issuer:     newTestIssuer(t),
		validator:  &testValidator{},
		logger:     zap.NewNop(),
		now:        time.Now,
		validating: newValidations(1),
	}
	h.setDefaults()
	t.Cleanup(func() { _ = h.validating.stop() })
	return h
}

func TestServeHTTP_PathPrefixRootServesACMEAndPassesOtherPaths(t *testing.T) {
	h := rootHandler(t)
	if h.PathPrefix != "" {
		t.Fatalf("path_prefix / became %q, want \"\"", h.PathPrefix)
	}
	tests := []struct {
		method, path string
		acme         bool
	}{
		{http.MethodGet, "/directory", true},
		{http.MethodHead, "/new-nonce", true},
		{http.MethodPost, "/new-order", true},
		{http.MethodPost, "/authz/abc", true},
		{http.MethodGet, "/", false},
		{http.MethodGet, "/index.html", false},
		{http.MethodGet, "/directory/other", false},
		{http.MethodGet, "/acme/directory", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var nextCalled bool
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				nextCalled = true
				w.WriteHeader(http.StatusTeapot)
				return nil
			})
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, "http://acme.test"+tt.path, nil)
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if nextCalled == tt.acme {
				t.Fatalf("next handler called: %v, want %v (answer %d %s)", nextCalled, !tt.acme, w.Code, w.Body)
			}
			if tt.acme && w.Header().Get("Replay-Nonce") == "" {
				t.Fatalf("ACME answer without Replay-Nonce: %d %s", w.Code, w.Body)
			}
		})
	}

	// The directory's URLs are at the root too, without a double slash.
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://acme.test/directory", nil), caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Fatal("directory passed on")
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	var dir directoryBody
	if err := json.Unmarshal(w.Body.Bytes(), &dir); err != nil || w.Code != http.StatusOK {
		t.Fatalf("directory: %d %s", w.Code, w.Body)
	}
	if dir.NewNonce != "http://acme.test/new-nonce" || dir.NewOrder != "http://acme.test/new-order" {
		t.Fatalf("directory at the root names %q and %q", dir.NewNonce, dir.NewOrder)
	}
}

func TestValidate_RefusesChallengeTypeListedTwice(t *testing.T) {
	for _, challenges := range [][]string{
		{challengeHTTP01, challengeHTTP01},
		{challengeDNS01, challengeHTTP01, challengeDNS01},
	} {
		h := &Handler{Challenges: challenges}
		h.setDefaults()
		if err := h.Validate(); err == nil {
			t.Errorf("challenges %v accepted", challenges)
		}
	}
	h := &Handler{Challenges: []string{challengeDNS01, challengeHTTP01}}
	h.setDefaults()
	if err := h.Validate(); err != nil {
		t.Errorf("distinct challenges refused: %v", err)
	}
}

func TestNewOrder_AcceptsNotBeforeWithinMaxBackdate(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	nb := time.Now().UTC().Add(-maxBackdate + 5*time.Minute).Truncate(time.Second)
	r := c.post(g.base+pathNewOrder, map[string]any{
		"identifiers": dnsIDs("skew.example.com"),
		"notBefore":   nb.Format(time.RFC3339),
	})
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder with notBefore %s ago: %d %s", maxBackdate-5*time.Minute, r.status, r.body)
	}
	var o orderBody
	r.decode(t, &o)
	if o.NotBefore != nb.Format(time.RFC3339) {
		t.Fatalf("order notBefore %q, want %q", o.NotBefore, nb.Format(time.RFC3339))
	}
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

func parseRFC3339(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestNewOrder_ReusesOnlyAuthorizationsThatOutliveTheOrder(t *testing.T) {
	g := newGateway(t)
	clock := g.withClock()
	c := g.newClient()
	c.register()
	name := "reuse.example.com"
	_, first := c.orderReady(name)
	authzURL := first.Authorizations[0]
	authzExpires := parseRFC3339(t, c.readAuthz(authzURL).Expires)
	orderLife := time.Duration(g.h.OrderLifetime)

	// With more than an order's lifetime left, it is reused, and the new
	// order expires no later than it.
	clock.Advance(time.Until(authzExpires) - orderLife - time.Minute)
	_, o := c.newOrderFor(name)
	if len(o.Authorizations) != 1 || o.Authorizations[0] != authzURL || o.Status != storage.StatusReady {
		t.Fatalf("authorization with %s left not reused: %+v", orderLife+time.Minute, o)
	}
	if exp := parseRFC3339(t, o.Expires); exp.After(authzExpires) {
		t.Fatalf("order reusing an authorization expires %s, after it (%s)", exp, authzExpires)
	}

	// With less, a new order gets a fresh pending authorization: reusing
	// it would let the ready order turn invalid before it expires.
	clock.Advance(2 * time.Minute)
	_, o = c.newOrderFor(name)
	if len(o.Authorizations) != 1 || o.Authorizations[0] == authzURL {
		t.Fatalf("authorization expiring within the order's lifetime reused: %+v", o)
	}
	if a := c.readAuthz(o.Authorizations[0]); a.Status != storage.StatusPending || o.Status != storage.StatusPending {
		t.Fatalf("new order %s with authorization %s, want both pending", o.Status, a.Status)
	}
}

func TestNewOrder_ExpiresNoLaterThanItsAuthorizations(t *testing.T) {
	g := newGateway(t)
	g.h.AuthzLifetime = g.h.OrderLifetime / 2
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("short.example.com")
	orderExpires := parseRFC3339(t, o.Expires)
	authzExpires := parseRFC3339(t, c.readAuthz(o.Authorizations[0]).Expires)
	if orderExpires.After(authzExpires) {
		t.Fatalf("order expires %s, after its authorization (%s)", orderExpires, authzExpires)
	}
}

// gateValidator holds every validation until open is called or the
// validation is cancelled.
type gateValidator struct {
	release chan struct{}
	once    sync.Once
	started chan string
}

func newGateValidator(t *testing.T) *gateValidator {
	v := &gateValidator{release: make(chan struct{}), started: make(chan string, 16)}
	t.Cleanup(v.open) // before the gateway's cleanup stops its validations
	return v
}

func (v *gateValidator) open() { v.once.Do(func() { close(v.release) }) }

func (v *gateValidator) wait(ctx context.Context, typ string) error {
	v.started <- typ
	select {
	case <-v.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *gateValidator) HTTP01(ctx context.Context, _, _, _ string) error {
	return v.wait(ctx, challengeHTTP01)
}

func (v *gateValidator) DNS01(ctx context.Context, _, _ string) error {
	return v.wait(ctx, challengeDNS01)
}

func (v *gateValidator) TLSALPN01(ctx context.Context, _, _ string) error {
	return v.wait(ctx, challengeTLSALPN01)
}

func (v *gateValidator) CAA(context.Context, string, bool, string, string) error { return nil }

func challengeOfType(t *testing.T, a authzBody, typ string) challengeBody {
	t.Helper()
	for _, ch := range a.Challenges {
		if ch.Type == typ {
			return ch
		}
	}
	t.Fatalf("authorization offers no %s: %+v", typ, a)
	return challengeBody{}
}

func TestChallenge_SecondChallengeStaysPendingWhileFirstIsProcessing(t *testing.T) {
	g := newGateway(t)
	gate := newGateValidator(t)
	g.h.validator = gate
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("two.example.com")
	authzURL := o.Authorizations[0]
	a := c.readAuthz(authzURL)
	http01, dns01 := challengeOfType(t, a, challengeHTTP01), challengeOfType(t, a, challengeDNS01)

	var ch challengeBody
	c.post(http01.URL, map[string]any{}).decode(t, &ch)
	if ch.Status != storage.StatusProcessing {
		t.Fatalf("http-01 is %s, want processing", ch.Status)
	}
	select {
	case typ := <-gate.started:
		if typ != challengeHTTP01 {
			t.Fatalf("validation of %s started", typ)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("http-01 validation never started")
	}
	ctx := context.Background()
	before, err := g.store.GetAuthz(ctx, orderID(authzURL))
	if err != nil {
		t.Fatal(err)
	}

	r := c.post(dns01.URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusPending {
		t.Fatalf("dns-01 posted during http-01 validation: %d %s", r.status, r.body)
	}
	after, err := g.store.GetAuthz(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("authorization changed:\nbefore %+v\nafter  %+v", before, after)
	}

	gate.open()
	final := c.waitAuthz(authzURL, storage.StatusValid)
	if got := challengeOfType(t, final, challengeDNS01).Status; got != storage.StatusPending {
		t.Fatalf("dns-01 is %s after http-01 validated the authorization", got)
	}
	select {
	case typ := <-gate.started:
		t.Fatalf("a second validation (%s) ran", typ)
	default:
	}
}

func TestChallenge_LeftProcessingIsValidatedAgainWhenPolled(t *testing.T) {
	for _, poll := range []string{"Authorization", "Challenge"} {
		t.Run("Polling"+poll, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("crashed.example.com")
			authzURL := o.Authorizations[0]
			ch := c.readAuthz(authzURL).Challenges[0]

			// A process that stopped mid-validation left it processing.
			ctx := context.Background()
			a, err := g.store.GetAuthz(ctx, orderID(authzURL))
			if err != nil {
				t.Fatal(err)
			}
			a.Challenges[challengeIndex(a, ch.Type)].Status = storage.StatusProcessing
			if err := g.store.UpdateAuthz(ctx, a); err != nil {
				t.Fatal(err)
			}

			url := authzURL
			if poll == "Challenge" {
				url = ch.URL
			}
			var status string
			for range 200 {
				var v struct{ Status string }
				c.post(url, nil).decode(t, &v)
				if status = v.Status; status != storage.StatusPending && status != storage.StatusProcessing {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if status != storage.StatusValid {
				t.Fatalf("%s polled while left processing ends %s, want valid", poll, status)
			}
			if got := c.readAuthz(authzURL).Status; got != storage.StatusValid {
				t.Fatalf("authorization is %s", got)
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
			if r := c.post(g.base+pathCert+serial, nil); r.status != http.StatusNotFound {
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

func TestSharedNonces_LifetimeFollowsLatestConfig(t *testing.T) {
	ctx := context.Background()
	name := "test/" + t.Name()
	clock := newAdjustableClock(time.Now())
	n1, release1, err := sharedNonces(name, time.Hour, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer release1()
	old, err := n1.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A reload shortens the lifetime; the store itself is kept.
	n2, release2, err := sharedNonces(name, time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if n1 != n2 {
		t.Fatal("a reload replaced the nonce store")
	}
	fresh, err := n2.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if err := n2.RedeemNonce(ctx, old); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("nonce older than the new lifetime redeemed: %v", err)
	}
	if err := n2.RedeemNonce(ctx, fresh); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("nonce older than the new lifetime redeemed: %v", err)
	}
	late, err := n2.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.RedeemNonce(ctx, late); err != nil {
		t.Fatalf("nonce within the lifetime refused: %v", err)
	}
}

// Run with -race: a reload changes the lifetime while requests redeem.
func TestSharedNonces_ReloadWhileRedeemingIsRaceFree(t *testing.T) {
	ctx := context.Background()
	name := "test/" + t.Name()
	n, release, err := sharedNonces(name, time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	nonces := make([]string, 200)
	for i := range nonces {
		if nonces[i], err = n.NewNonce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range len(nonces) {
			_, rel, err := sharedNonces(name, 30*time.Minute, time.Now)
			if err != nil {
				t.Error(err)
				return
			}
			_ = rel()
		}
	})
	wg.Go(func() {
		for _, nonce := range nonces {
			if err := n.RedeemNonce(ctx, nonce); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestSharedValidations_SharedUntilLastReleaseThenStopped(t *testing.T) {
	name := "test/" + t.Name()
	v1, release1, err := sharedValidations(name, 2)
	if err != nil {
		t.Fatal(err)
	}
	v2, release2, err := sharedValidations(name, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != v2 {
		t.Fatal("a second user of the same gateway got other validations")
	}

	// The old config's release leaves the new config's validations running.
	if err := release1(); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	done1, _ := v2.start("after-first-release", "acct", false, func(context.Context) { ran.Store(true) })
	<-done1
	if !ran.Load() {
		t.Fatal("validations stopped while still in use")
	}
	started, cancelled := make(chan struct{}), make(chan error, 1)
	v2.start("running-at-last-release", "acct", false, func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
	})
	<-started

	// The last release stops them: the running one is cancelled and
	// waited for, and nothing starts any more.
	if err := release2(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cancelled:
		if err == nil {
			t.Fatal("running validation not cancelled")
		}
	default:
		t.Fatal("last release returned before the running validation ended")
	}
	ran.Store(false)
	done, _ := v2.start("after-last-release", "acct", false, func(context.Context) { ran.Store(true) })
	select {
	case <-done:
	default:
		t.Fatal("start on stopped validations returned an open channel")
	}
	if ran.Load() || v2.running("after-last-release") {
		t.Fatal("stopped validations ran a validation")
	}
}
