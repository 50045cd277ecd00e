package caddyacmegw

import (
	"sync"
	"time"
)

// onceForms remembers the one-use nonces of the forms sent already, so
// that the same form sent again (a refresh of the page that answered it)
// is recognised rather than acted on twice. It keeps at most max nonces,
// each for ttl, dropping the oldest first; a form sent again after that,
// or to another instance, is not recognised. Safe for concurrent use.
type onceForms struct {
	mu    sync.Mutex
	now   func() time.Time
	ttl   time.Duration
	max   int
	sent  map[string]onceSent
	order []onceKey // oldest first
}

// onceSent is a form sent: when, and what it made ("" while it is made).
type onceSent struct {
	at     time.Time
	result string
}

type onceKey struct {
	nonce string
	at    time.Time
}

// Bounds of the nonces a console remembers: a day's forms, of which an
// officer refreshes one within minutes.
const (
	onceFormsTTL = 24 * time.Hour
	onceFormsMax = 4096
)

func newOnceForms(now func() time.Time) *onceForms {
	return &onceForms{now: now, ttl: onceFormsTTL, max: onceFormsMax, sent: map[string]onceSent{}}
}

// claim marks the form with nonce sent. It reports false, with what the
// form made the first time, when the form was sent already.
func (f *onceForms) claim(nonce string) (result string, fresh bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.forget(func(k onceKey) bool { return now.Sub(k.at) > f.ttl })
	if s, ok := f.sent[nonce]; ok {
		return s.result, false
	}
	f.forget(func(onceKey) bool { return len(f.order) >= f.max })
	f.sent[nonce] = onceSent{at: now}
	f.order = append(f.order, onceKey{nonce, now})
	return "", true
}

// forget drops the oldest nonces while drop says so of them.
func (f *onceForms) forget(drop func(onceKey) bool) {
	for len(f.order) > 0 && drop(f.order[0]) {
		if k := f.order[0]; f.sent[k.nonce].at.Equal(k.at) {
			delete(f.sent, k.nonce)
		}
		f.order = f.order[1:]
	}
}

// done records what the form with nonce made.
func (f *onceForms) done(nonce, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sent[nonce]; ok {
		s.result = result
		f.sent[nonce] = s
	}
}

// release forgets a form whose change failed, so that it can be sent
// again once corrected.
func (f *onceForms) release(nonce string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sent, nonce)
}
