package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// racers is how many goroutines race for one compare-and-swap.
const racers = 8

// race runs try(i) for i in [0, racers) at once and returns the indexes that
// returned nil. Any error other than ErrConflict fails t.
func race(t *testing.T, try func(i int) error) []int {
	t.Helper()
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  [racers]error
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = try(i)
		})
	}
	close(start)
	wg.Wait()
	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("racer %d: error = %v, want nil or ErrConflict", i, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d racers won, want exactly 1", len(winners))
	}
	return winners
}

func testRaceUpdateOrder(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com")
	read := getOrder(t, s, o.ID)

	// Each racer changes its own copy of the same read.
	var mine [racers]*storage.Order
	for i := range racers {
		c := *read
		c.Status = storage.StatusProcessing
		c.UpdatedAt = base.Add(time.Duration(i+1) * time.Second)
		mine[i] = &c
	}
	w := race(t, func(i int) error { return s.UpdateOrder(t.Context(), mine[i]) })[0]
	got := getOrder(t, s, o.ID)
	if got.Version != read.Version+1 {
		t.Fatalf("Version after race = %d, want %d", got.Version, read.Version+1)
	}
	mustEqual(t, "GetOrder after race", mine[w], got)
}

func testRaceCreateAccount(t *testing.T, s storage.Store) {
	thumbprint := newThumbprint(t)
	var mine [racers]*storage.Account
	for i := range racers {
		mine[i] = newAccount(t)
		mine[i].KeyThumbprint = thumbprint
	}
	w := race(t, func(i int) error { return s.CreateAccount(t.Context(), mine[i]) })[0]
	got, err := s.AccountByThumbprint(t.Context(), thumbprint)
	if err != nil {
		t.Fatalf("AccountByThumbprint after race: %v", err)
	}
	mustEqual(t, "AccountByThumbprint after race", mine[w], got)
}

func testRaceStoreCertificate(t *testing.T, s storage.Store) {
	acct := createAccount(t, s)
	o, _ := createOrder(t, s, acct.ID, "example.com")
	read := getOrder(t, s, o.ID)

	var (
		certs  [racers]*storage.Certificate
		orders [racers]*storage.Order
	)
	for i := range racers {
		certs[i] = newCertificate(t, read)
		orders[i] = finalized(read, certs[i])
	}
	w := race(t, func(i int) error { return s.StoreCertificate(t.Context(), certs[i], orders[i]) })[0]
	mustEqual(t, "GetOrder after race", orders[w], getOrder(t, s, o.ID))
	for i, c := range certs {
		_, err := s.GetCertificate(t.Context(), c.Serial)
		switch {
		case i == w && err != nil:
			t.Errorf("GetCertificate(winner): %v", err)
		case i != w && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("GetCertificate(loser %d) error = %v, want ErrNotFound", i, err)
		}
	}
}

func testNonces(t *testing.T, s storage.Store) {
	n, ok := s.(storage.Nonces)
	if !ok {
		t.Skip("store does not implement storage.Nonces")
	}
	ctx := t.Context()
	first, err := n.NewNonce(ctx)
	if err != nil {
		t.Fatalf("NewNonce: %v", err)
	}
	second, err := n.NewNonce(ctx)
	if err != nil {
		t.Fatalf("NewNonce: %v", err)
	}
	if first == "" || first == second {
		t.Fatalf("NewNonce returned %q then %q, want two distinct nonces", first, second)
	}
	if err := n.RedeemNonce(ctx, first); err != nil {
		t.Fatalf("RedeemNonce(fresh): %v", err)
	}
	if err := n.RedeemNonce(ctx, first); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RedeemNonce(used) error = %v, want ErrNotFound", err)
	}
	if err := n.RedeemNonce(ctx, newID(t)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RedeemNonce(unknown) error = %v, want ErrNotFound", err)
	}
	// Redeeming one nonce leaves the others.
	if err := n.RedeemNonce(ctx, second); err != nil {
		t.Errorf("RedeemNonce(second fresh): %v", err)
	}
}
