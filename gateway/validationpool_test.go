package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestValidationAttempts(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		failFirst int
		want      string
		wantCalls int
	}{
		{"second try succeeds with two attempts", 2, 1, storage.StatusValid, 2},
		{"first failure is final with one attempt", 1, 1, storage.StatusInvalid, 1},
		{"success on the first try stops trying", 2, 0, storage.StatusValid, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			v := &recordingValidator{failFirst: tt.failFirst}
			g.h.validator = v
			g.h.cfg.ValidationAttempts = tt.attempts
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("retry.example.com")
			c.post(challengeOfType(t, c.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
			c.waitAuthz(o.Authorizations[0], tt.want)
			if got := v.count(challengeHTTP01); got != tt.wantCalls {
				t.Fatalf("%d validation tries, want %d", got, tt.wantCalls)
			}
		})
	}
}

// perAccountScene has account a hold one blocked validation, with the cap
// at one validation per account, and a second pending authorization.
func perAccountScene(s *negScene) {
	s.g.h.cfg.MaxValidationsPerAccount = 1
	gate := newGateValidator(s.t)
	s.g.h.validator = gate
	s.a = s.registered()
	s.pendingOrder(s.a, "one.example.com", "two.example.com")
	first := s.a.readAuthz(s.order.Authorizations[0])
	s.a.post(challengeOfType(s.t, first, challengeHTTP01).URL, map[string]any{})
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		s.t.Fatal("first validation did not start")
	}
}

func TestNegative_MaxValidationsPerAccount(t *testing.T) {
	runNegative(t, []negCase{{
		name:  "second validation of the same account",
		setup: perAccountScene,
		send: func(s *negScene) *reply {
			second := s.a.readAuthz(s.order.Authorizations[1])
			return s.a.post(challengeOfType(s.t, second, challengeHTTP01).URL, map[string]any{})
		},
		typ: "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, _ *negScene, r *reply, _ *Problem) {
			if r.header.Get("Retry-After") == "" {
				t.Error("rateLimited answer without Retry-After")
			}
		},
	}})
}

func TestMaxValidationsPerAccount_OtherAccountIsNotAffected(t *testing.T) {
	g := newGateway(t)
	s := &negScene{t: t, g: g}
	perAccountScene(s)
	gate := g.h.validator.(*gateValidator)

	b := g.newClient()
	b.register()
	_, o := b.newOrderFor("other.example.com")
	var ch challengeBody
	r := b.post(challengeOfType(t, b.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusProcessing {
		t.Fatalf("another account's challenge: %d %s, want 200 processing", r.status, r.body)
	}
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		t.Fatal("another account's validation did not start")
	}

	// Once a's validation ends, a may validate again.
	gate.open()
	s.a.waitAuthz(s.order.Authorizations[0], storage.StatusValid)
	second := s.a.readAuthz(s.order.Authorizations[1])
	if r := s.a.post(challengeOfType(t, second, challengeHTTP01).URL, map[string]any{}); r.status != http.StatusOK {
		t.Fatalf("a's second challenge after the first ended: %d %s", r.status, r.body)
	}
	s.a.waitAuthz(s.order.Authorizations[1], storage.StatusValid)
}

// Stop cancels the running validation and waits for it, and nothing
// starts afterwards.
func TestValidationPool_StopCancelsAndRefuses(t *testing.T) {
	v := NewValidationPool(2)
	var ran atomic.Bool
	done1, _ := v.start("before-stop", "acct", false, func(context.Context) { ran.Store(true) })
	<-done1
	if !ran.Load() {
		t.Fatal("validation did not run")
	}
	started, cancelled := make(chan struct{}), make(chan error, 1)
	v.start("running-at-stop", "acct", false, func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
	})
	<-started
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cancelled:
		if err == nil {
			t.Fatal("running validation not cancelled")
		}
	default:
		t.Fatal("Stop returned before the running validation ended")
	}
	ran.Store(false)
	done, _ := v.start("after-stop", "acct", false, func(context.Context) { ran.Store(true) })
	select {
	case <-done:
	default:
		t.Fatal("start on a stopped pool returned an open channel")
	}
	if ran.Load() || v.running("after-stop") {
		t.Fatal("a stopped pool ran a validation")
	}
}
