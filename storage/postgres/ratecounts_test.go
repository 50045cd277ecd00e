package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// Two instances of one namespace share the counts: the last slot of a
// window goes to exactly one of them, a slot given back at one is free at
// the other, and the cleanup forgets ended windows.
func TestRateCounts_SharedByInstances(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	pool := newPool(t, pgtest.Start(t))
	a := newStore(t, pool, Options{Namespace: "gw", Now: func() time.Time { return now.Add(2 * time.Hour) }})
	b := newStore(t, pool, Options{Namespace: "gw"})
	other := newStore(t, pool, Options{Namespace: "other"})
	const max = 5
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AddCount(ctx, "orders", "acct", now, time.Hour, 1, max)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != max {
		t.Fatalf("%d of 20 racing additions won, want %d", won.Load(), max)
	}
	if n, err := a.HighestCount(ctx, "orders", []string{"x", "acct"}, now); err != nil || n != max {
		t.Fatalf("HighestCount = %d, %v; want %d", n, err, max)
	}
	if ok, _ := other.AddCount(ctx, "orders", "acct", now, time.Hour, max, max); !ok {
		t.Fatal("another namespace's count is not its own")
	}
	if ok, err := a.AddCount(ctx, "orders", "acct", now, time.Hour, -1, max); !ok || err != nil {
		t.Fatalf("giving back: %v, %v", ok, err)
	}
	if ok, _ := b.AddCount(ctx, "orders", "acct", now, time.Hour, 1, max); !ok {
		t.Fatal("a slot given back at one instance is not free at the other")
	}
	if ok, _ := b.AddCount(ctx, "orders", "acct", now, time.Hour, 1, max); ok {
		t.Fatal("over the limit, yet added")
	}
	res, err := a.Cleanup(ctx) // a's clock is past the window
	if err != nil || res.Counts != 1 {
		t.Fatalf("Cleanup = %+v, %v; want 1 count deleted", res, err)
	}
}
