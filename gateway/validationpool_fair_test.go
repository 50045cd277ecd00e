package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// floodPool has five accounts queue as many slow validations as the pool
// lets them, each blocking until released, and returns the channels that
// report which validation started and that release one running validation.
func floodPool(t *testing.T, v *ValidationPool, perAccount int) (started chan string, release chan struct{}) {
	t.Helper()
	started, release = make(chan string, 1024), make(chan struct{})
	t.Cleanup(func() {
		if err := v.Stop(); err != nil {
			t.Error(err)
		}
	})
	for a := range 5 {
		account := fmt.Sprintf("flood-%d", a)
		for i := 0; v.reserve(account, perAccount); i++ {
			key := fmt.Sprintf("%s-%d", account, i)
			v.start(key, account, true, func(ctx context.Context) {
				started <- key
				select {
				case <-release:
				case <-ctx.Done():
				}
			})
		}
	}
	return started, release
}

func TestValidationPool_FloodingAccountsDoNotStarveAnother(t *testing.T) {
	v := NewValidationPool(2)
	started, release := floodPool(t, v, 16)
	if v.reserve("flood-0", 16) {
		t.Fatal("a flooding account holding its share was let in again")
	}
	if !v.reserve("newcomer", 16) {
		t.Fatal("five flooding accounts denied another account a place in the queue")
	}
	v.start("newcomer-0", "newcomer", true, func(ctx context.Context) { started <- "newcomer-0" })

	// Every waiting account gets the next free slot in turn: the newcomer
	// is among the first six to start once running validations end.
	for range 2 { // the two running when the flood began
		<-started
	}
	for n := range 6 {
		release <- struct{}{}
		select {
		case key := <-started:
			if key == "newcomer-0" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no validation started after %d ended", n+1)
		}
	}
	t.Fatal("the newcomer's validation did not start within six turns")
}

func TestValidationPool_BoundedWhateverTheAccounts(t *testing.T) {
	v := NewValidationPool(1)
	floodPool(t, v, 16)
	admitted := 0
	for a := range 100 {
		if v.reserve(fmt.Sprintf("newcomer-%d", a), 16) {
			admitted++
		}
	}
	if size := 1 + queuedPerSlot; admitted == 0 || admitted > size {
		t.Fatalf("%d newcomers admitted to a full queue of %d, want some, at most %d", admitted, size, size)
	}
}
