package storagetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func testReplacementClaims(t *testing.T, s storage.Store) {
	ctx := t.Context()
	serial, first, second := newSerial(t), newID(t), newID(t)
	if _, err := s.ReplacementClaim(ctx, serial); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ReplacementClaim(unclaimed) error = %v, want ErrNotFound", err)
	}
	claimed := func(want string) {
		t.Helper()
		if got, err := s.ReplacementClaim(ctx, serial); err != nil || got != want {
			t.Fatalf("ReplacementClaim = %q, %v; want %q", got, err, want)
		}
	}
	if err := s.ClaimReplacement(ctx, serial, first, ""); err != nil {
		t.Fatalf("ClaimReplacement(unclaimed): %v", err)
	}
	claimed(first)
	for _, prev := range []string{"", second} {
		if err := s.ClaimReplacement(ctx, serial, second, prev); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("ClaimReplacement(prev %q, claimed by %q) error = %v, want ErrConflict", prev, first, err)
		}
		claimed(first)
	}
	if err := s.ClaimReplacement(ctx, serial, second, first); err != nil {
		t.Fatalf("ClaimReplacement(taking over %q): %v", first, err)
	}
	claimed(second)
	if err := s.ClaimReplacement(ctx, newSerial(t), newID(t), first); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("ClaimReplacement(unclaimed, prev %q) error = %v, want ErrConflict", first, err)
	}
}

func testRaceReplacementClaim(t *testing.T, s storage.Store) {
	ctx := t.Context()
	serial := newSerial(t)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
	)
	for range n {
		id := newID(t)
		wg.Go(func() {
			err := s.ClaimReplacement(ctx, serial, id, "")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, id)
			} else if !errors.Is(err, storage.ErrConflict) {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || len(won) != 1 {
		t.Fatalf("%d racing claims: winners %v, errors %v; want one winner, the rest ErrConflict", n, won, errs)
	}
	if got, err := s.ReplacementClaim(ctx, serial); err != nil || got != won[0] {
		t.Fatalf("ReplacementClaim = %q, %v; want the winner %q", got, err, won[0])
	}
}

// testRaceReplacementTakeover races orders to take over one claim from the
// same dead order: the compare-and-swap lets exactly one of them win.
func testRaceReplacementTakeover(t *testing.T, s storage.Store) {
	ctx := t.Context()
	serial, first := newSerial(t), newID(t)
	if err := s.ClaimReplacement(ctx, serial, first, ""); err != nil {
		t.Fatalf("ClaimReplacement(unclaimed): %v", err)
	}
	var ids [racers]string
	for i := range racers {
		ids[i] = newID(t)
	}
	w := race(t, func(i int) error { return s.ClaimReplacement(ctx, serial, ids[i], first) })[0]
	if got, err := s.ReplacementClaim(ctx, serial); err != nil || got != ids[w] {
		t.Fatalf("ReplacementClaim after takeover race = %q, %v; want the winner %q", got, err, ids[w])
	}
}
