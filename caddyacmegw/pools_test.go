package caddyacmegw

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestSharedNonces_LifetimeFollowsLatestConfig(t *testing.T) {
	ctx := context.Background()
	name := "test/" + t.Name()
	var skew atomic.Int64 // how far the clock is moved ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	n1, release1, err := sharedNonces(name, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	defer release1()
	old, err := n1.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A reload shortens the lifetime; the store itself is kept.
	n2, release2, err := sharedNonces(name, time.Minute, now)
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
	skew.Add(int64(2 * time.Minute))
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
	select {
	case <-v2.Done():
		t.Fatal("validations stopped while still in use")
	default:
	}
	// The last release stops them.
	if err := release2(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v2.Done():
	default:
		t.Fatal("validations still running after the last release")
	}
}
