package caddystore_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/caddystore"
	"github.com/caddyacmegw/caddyacmegw/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return caddystore.New(&certmagic.FileStorage{Path: t.TempDir()}, "acme_gateway/test")
	})
}

// TestUpdateOrder_RaceAcrossStoresHasOneWinner stands two stores on one storage, as two
// gateway processes would be, so that only the storage's locks keep them
// apart: exactly one racer may win a compare-and-swap.
func TestUpdateOrder_RaceAcrossStoresHasOneWinner(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	stores := [2]*caddystore.Store{caddystore.New(fs, "acme_gateway/test"), caddystore.New(fs, "acme_gateway/test")}
	ctx := t.Context()
	o := &storage.Order{ID: "order1", AccountID: "account1", Status: storage.StatusPending}
	if err := stores[0].CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	read, err := stores[1].GetOrder(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}

	const racers = 4
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  [racers]error
	)
	for i := range racers {
		mine := *read
		mine.Status = storage.StatusProcessing
		wg.Go(func() {
			<-start
			errs[i] = stores[i%2].UpdateOrder(ctx, &mine)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won, want 1", wins)
	}
	got, err := stores[0].GetOrder(ctx, o.ID)
	if err != nil || got.Version != read.Version+1 {
		t.Fatalf("GetOrder after race = %+v, %v; want Version %d", got, err, read.Version+1)
	}
}
