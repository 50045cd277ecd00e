package gateway

import (
	"context"
	"sync"
)

// queuedPerSlot bounds the validations waiting for a slot, per slot.
const queuedPerSlot = 8

// ValidationPool runs challenge validations in the background, at most limit
// at once, at most one per authorization, and stops them when its last user
// releases it.
//
// It is fair between accounts, so that a few accounts cannot starve the
// others: a free slot goes to the accounts with waiting validations in
// turn, one validation each; and once the queue (queuedPerSlot times limit
// waiting) is full, an account with nothing in it still gets a place
// (hasRoomFor), while one with validations queued is refused until one of
// them ends.
type ValidationPool struct {
	limit  int
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
	// slotsUsed counts the validations holding a slot.
	slotsUsed int
	// waiting holds each account's validations waiting for a slot; turns
	// is the order in which those accounts get the next free one.
	waiting map[string][]*poolJob
	turns   []string
}

// poolJob is one validation of the pool.
type poolJob struct {
	key, account string
	fn           func(ctx context.Context)
	done         chan struct{}
}

// NewValidationPool makes a pool running at most limit validations at once.
func NewValidationPool(limit int) *ValidationPool {
	ctx, cancel := context.WithCancel(context.Background())
	return &ValidationPool{
		limit:      limit,
		ctx:        ctx,
		cancel:     cancel,
		inflight:   make(map[string]chan struct{}),
		perAccount: make(map[string]int),
		waiting:    make(map[string][]*poolJob),
	}
}

// reserve takes a slot for a new validation of account, unless the account
// has perAccount validations already or the queue is full for it. The
// slot is used by start(..., true, ...).
func (v *ValidationPool) reserve(account string, perAccount int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.perAccount[account] >= perAccount || !v.hasRoomFor(account) {
		return false
	}
	v.perAccount[account]++
	v.reserved++
	return true
}

// hasRoomFor reports whether account may queue one more validation; v.mu
// is held. Past the queue's size an account with nothing queued still gets
// one place, as many as the queue has places: denying others then takes
// that many accounts, each with a validation waiting.
func (v *ValidationPool) hasRoomFor(account string) bool {
	size := v.limit * (1 + queuedPerSlot)
	total := len(v.inflight) + v.reserved
	return total < size || total < 2*size && v.perAccount[account] == 0
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
	defer v.mu.Unlock()
	if reserved {
		v.reserved--
	} else {
		v.perAccount[account]++
	}
	if running, busy := v.inflight[key]; busy {
		v.dropAccount(account)
		return running, false
	}
	ch := make(chan struct{})
	if v.ctx.Err() != nil {
		v.dropAccount(account)
		close(ch)
		return ch, false
	}
	v.inflight[key] = ch
	v.wg.Add(1)
	j := &poolJob{key: key, account: account, fn: fn, done: ch}
	if v.slotsUsed < v.limit {
		v.slotsUsed++
		go v.run(j)
		return ch, true
	}
	if len(v.waiting[account]) == 0 {
		v.turns = append(v.turns, account)
	}
	v.waiting[account] = append(v.waiting[account], j)
	return ch, true
}

// run runs j, then the validations whose turn it is, while there are any.
func (v *ValidationPool) run(j *poolJob) {
	for j != nil {
		if v.ctx.Err() == nil {
			j.fn(v.ctx)
		}
		v.mu.Lock()
		v.finish(j)
		j = v.next()
		v.mu.Unlock()
	}
}

// next takes the first waiting validation of the account whose turn it
// is, and gives the account a turn at the end when it has more; without
// any (or once stopped) the slot is freed and next is nil. v.mu is held.
func (v *ValidationPool) next() *poolJob {
	if len(v.turns) == 0 || v.ctx.Err() != nil {
		v.slotsUsed--
		return nil
	}
	account := v.turns[0]
	v.turns = v.turns[1:]
	queue := v.waiting[account]
	if len(queue) == 1 {
		delete(v.waiting, account)
	} else {
		v.waiting[account] = queue[1:]
		v.turns = append(v.turns, account)
	}
	return queue[0]
}

// finish ends j: it no longer counts, and its waiters learn so; v.mu is
// held.
func (v *ValidationPool) finish(j *poolJob) {
	delete(v.inflight, j.key)
	v.dropAccount(j.account)
	close(j.done)
	v.wg.Done()
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

// Stop cancels running validations, drops the waiting ones and waits for
// them.
func (v *ValidationPool) Stop() error {
	v.cancel()
	v.mu.Lock()
	for _, queue := range v.waiting {
		for _, j := range queue {
			v.finish(j)
		}
	}
	clear(v.waiting)
	v.turns = nil
	v.mu.Unlock()
	v.wg.Wait()
	return nil
}
