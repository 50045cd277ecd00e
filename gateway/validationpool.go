package gateway

import (
	"context"
	"sync"
)

// queuedPerSlot bounds the validations waiting for a slot, per slot.
const queuedPerSlot = 8

// ValidationPool runs challenge validations in the background, at most limit
// at once, at most one per authorization, with at most queuedPerSlot times
// limit waiting, and stops them when its last user releases it.
type ValidationPool struct {
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]chan struct{}
	// perAccount counts the validations of each account in inflight, and
	// its reservations.
	perAccount map[string]int
	// reserved counts slots reserved for validations not yet started.
	reserved int
}

// NewValidationPool makes a pool running at most limit validations at once.
func NewValidationPool(limit int) *ValidationPool {
	ctx, cancel := context.WithCancel(context.Background())
	return &ValidationPool{
		sem:        make(chan struct{}, limit),
		ctx:        ctx,
		cancel:     cancel,
		inflight:   make(map[string]chan struct{}),
		perAccount: make(map[string]int),
	}
}

// reserve takes a slot for a new validation of account, unless the queue
// is full or the account has perAccount validations already. The slot is
// used by start(..., true, ...).
func (v *ValidationPool) reserve(account string, perAccount int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.isFull() || v.perAccount[account] >= perAccount {
		return false
	}
	v.perAccount[account]++
	v.reserved++
	return true
}

func (v *ValidationPool) dropAccount(account string) {
	if v.perAccount[account]--; v.perAccount[account] <= 0 {
		delete(v.perAccount, account)
	}
}

// start runs fn for key unless one already runs for it (started is then
// false); reserved says whether the caller holds a slot from reserve. done
// is closed when the run for key ends.
func (v *ValidationPool) start(key, account string, reserved bool, fn func(ctx context.Context)) (done <-chan struct{}, started bool) {
	v.mu.Lock()
	if reserved {
		v.reserved--
	} else {
		v.perAccount[account]++
	}
	if running, busy := v.inflight[key]; busy {
		v.dropAccount(account)
		v.mu.Unlock()
		return running, false
	}
	ch := make(chan struct{})
	if v.ctx.Err() != nil {
		v.dropAccount(account)
		v.mu.Unlock()
		close(ch)
		return ch, false
	}
	v.inflight[key] = ch
	v.wg.Add(1)
	v.mu.Unlock()

	go func() {
		defer func() {
			v.mu.Lock()
			delete(v.inflight, key)
			v.dropAccount(account)
			v.mu.Unlock()
			close(ch)
			v.wg.Done()
		}()
		select {
		case v.sem <- struct{}{}:
		case <-v.ctx.Done():
			return
		}
		defer func() { <-v.sem }()
		fn(v.ctx)
	}()
	return ch, true
}

// isFull reports whether no more validations may wait; v.mu is held.
func (v *ValidationPool) isFull() bool {
	return len(v.inflight)+v.reserved >= cap(v.sem)*(1+queuedPerSlot)
}

// running reports whether a validation runs or waits for key.
func (v *ValidationPool) running(key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.inflight[key]
	return ok
}

// Done is closed once the pool is stopped.
func (v *ValidationPool) Done() <-chan struct{} { return v.ctx.Done() }

// Stop cancels running validations and waits for them.
func (v *ValidationPool) Stop() error {
	v.cancel()
	v.wg.Wait()
	return nil
}
