package gateway

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A validation that ends within challengeWait is answered at once and
// stored in one write: the challenge goes from pending to valid without a
// stored processing step.
func TestChallenge_FastValidationAnswersOutcomeAndWritesOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       bool
		wantStatus string
	}{
		{"valid", false, storage.StatusValid},
		{"invalid", true, storage.StatusInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			if tc.fail {
				g.valid.failWith(validate.KindUnauthorized)
			}
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("fast.example.com")
			authzURL := o.Authorizations[0]
			before, err := g.store.GetAuthz(context.Background(), orderID(authzURL))
			if err != nil {
				t.Fatal(err)
			}

			var ch challengeBody
			r := c.post(challengeOfType(t, c.readAuthz(authzURL), challengeDNS01).URL, map[string]any{})
			r.decode(t, &ch)
			if r.status != http.StatusOK || ch.Status != tc.wantStatus {
				t.Fatalf("challenge answered %d %s, want %s", r.status, r.body, tc.wantStatus)
			}
			if r.header.Get("Retry-After") != "" {
				t.Errorf("a decided challenge came with Retry-After %q", r.header.Get("Retry-After"))
			}
			after, err := g.store.GetAuthz(context.Background(), before.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.Status != tc.wantStatus || after.Version != before.Version+1 {
				t.Fatalf("stored authorization is %s at version %d, want %s at %d (one write)",
					after.Status, after.Version, tc.wantStatus, before.Version+1)
			}
		})
	}
}

// failingAuthzStore fails the first failures authorization updates.
type failingAuthzStore struct {
	storage.Store
	mu       sync.Mutex
	failures int
}

func (s *failingAuthzStore) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	s.mu.Lock()
	fail := s.failures > 0
	s.failures--
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("test store down: %w", storage.ErrUnavailable)
	}
	return s.Store.UpdateAuthz(ctx, a)
}

// A quick validation whose outcome cannot be stored leaves the challenge
// processing, not pending: clients post a challenge once and then poll,
// and a poll queues a processing challenge again.
func TestChallenge_OutcomeNotStoredIsValidatedAgainOnPoll(t *testing.T) {
	g := newGateway(t)
	g.h.store = &failingAuthzStore{Store: g.store, failures: 1}
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("lost.example.com")
	authzURL := o.Authorizations[0]

	var ch challengeBody
	r := c.post(challengeOfType(t, c.readAuthz(authzURL), challengeDNS01).URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusProcessing {
		t.Fatalf("challenge whose outcome was not stored answered %d %s, want processing", r.status, r.body)
	}
	c.waitAuthz(authzURL, storage.StatusValid)
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

// A failed validation is logged at info level with its problem and cause,
// where an operator sees it.
func TestChallenge_FailureIsLoggedWithItsCause(t *testing.T) {
	g := newGateway(t)
	core, logs := observer.New(zap.InfoLevel)
	g.h.logger = zap.New(core)
	g.valid.failWith(validate.KindIncorrectResponse)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "logged.example.com"}}})
	var o orderBody
	r.decode(t, &o)
	var a authzBody
	c.post(o.Authorizations[0], nil).decode(t, &a)
	c.post(a.Challenges[0].URL, map[string]any{})
	c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	entries := logs.FilterMessage("challenge failed").All()
	if len(entries) != 1 {
		t.Fatalf("%d \"challenge failed\" entries, want 1: %v", len(entries), logs.All())
	}
	fields := entries[0].ContextMap()
	if fields["identifier"] != "logged.example.com" || fields["problem"] != problemNS+"incorrectResponse" ||
		!strings.Contains(fmt.Sprint(fields["error"]), "test says no") {
		t.Fatalf("log fields %v", fields)
	}
}
