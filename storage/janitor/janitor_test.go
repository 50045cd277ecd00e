package janitor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage/janitor"
)

// backlog is a storage.Expirer holding left records that have expired, and
// the cut-offs it was called with.
type backlog struct {
	mu      sync.Mutex
	left    int
	befores []time.Time
}

func (b *backlog) DeleteExpired(_ context.Context, before time.Time, limit int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.befores = append(b.befores, before)
	n := min(limit, b.left)
	b.left -= n
	return n, nil
}

func TestSweep_DeletesInBatchesUntilOneIsShort(t *testing.T) {
	b := &backlog{left: 1250}
	before := time.Now()
	deleted, batches, err := janitor.Sweep(t.Context(), b, before, 500)
	if err != nil || deleted != 1250 || batches != 3 {
		t.Fatalf("Sweep = %d deleted in %d batches, %v; want 1250 in 3", deleted, batches, err)
	}
	for _, got := range b.befores {
		if !got.Equal(before) {
			t.Fatalf("DeleteExpired called with %v, want %v", got, before)
		}
	}
}

func TestStart_DeletesWhatExpiredGraceAgoUntilStopped(t *testing.T) {
	b := &backlog{left: 1000}
	now := time.Date(2031, time.March, 14, 0, 0, 0, 0, time.UTC)
	j := janitor.Start(b, janitor.Options{Interval: time.Millisecond, Grace: time.Hour, Batch: 300,
		Now: func() time.Time { return now }})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		left, calls := b.left, len(b.befores)
		b.mu.Unlock()
		if left == 0 && calls >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left after %d calls", left, calls)
		}
		time.Sleep(time.Millisecond)
	}
	j.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := len(b.befores)
	for _, got := range b.befores {
		if want := now.Add(-time.Hour); !got.Equal(want) {
			t.Fatalf("DeleteExpired called with %v, want %v", got, want)
		}
	}
	b.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	b.mu.Lock()
	if len(b.befores) != calls {
		t.Fatal("the janitor ran after Stop")
	}
}
