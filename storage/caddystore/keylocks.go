package caddystore

import (
	"context"
	"sync"
)

// keyLocks is a set of mutexes by key that honour ctx while waiting. An
// entry lives only while some goroutine holds or awaits it, so the set stays
// as small as the number of records being written.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	held chan struct{} // a token in the channel means locked
	refs int           // holders and waiters
}

func (k *keyLocks) lock(ctx context.Context, key string) error {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.held <- struct{}{}:
		return nil
	case <-ctx.Done():
		k.release(key, l)
		return ctx.Err()
	}
}

func (k *keyLocks) unlock(key string) {
	k.mu.Lock()
	l := k.m[key]
	k.mu.Unlock()
	<-l.held
	k.release(key, l)
}

func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}
