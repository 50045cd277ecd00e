package caddyacmegw

import (
	"context"
	"sync"
)

// validations runs challenge validations in the background, at most limit
// at once, at most one per authorization, and stops them on Cleanup.
type validations struct {
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]chan struct{}
}

func newValidations(limit int) *validations {
	ctx, cancel := context.WithCancel(context.Background())
	return &validations{
		sem:      make(chan struct{}, limit),
		ctx:      ctx,
		cancel:   cancel,
		inflight: make(map[string]chan struct{}),
	}
}

// start runs fn for key unless one already runs for it. The channel it
// returns is closed when that run ends.
func (v *validations) start(key string, fn func(ctx context.Context)) <-chan struct{} {
	v.mu.Lock()
	if done, busy := v.inflight[key]; busy {
		v.mu.Unlock()
		return done
	}
	done := make(chan struct{})
	if v.ctx.Err() != nil {
		v.mu.Unlock()
		close(done)
		return done
	}
	v.inflight[key] = done
	v.wg.Add(1)
	v.mu.Unlock()

	go func() {
		defer func() {
			v.mu.Lock()
			delete(v.inflight, key)
			v.mu.Unlock()
			close(done)
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
	return done
}

// stop cancels running validations and waits for them.
func (v *validations) stop() error {
	v.cancel()
	v.wg.Wait()
	return nil
}
