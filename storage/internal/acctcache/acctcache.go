// Package acctcache keeps in memory the accounts a store has read by id.
// Nearly every ACME request is signed with an account's key id, so the
// gateway loads an account for each; a store that can learn of every change
// to an account serves those loads from here instead of its disk or
// database.
//
// The store tells the cache of every change (Invalidate) and how long what
// it holds is known to be current (TrustUntil): a store that is the only
// writer of its records trusts the cache for good; one that hears of other
// writers' changes asynchronously trusts it only as far as its last proof
// that it hears them. Get answers only while the cache is trusted.
//
// A read races with the changes that land while it runs. Begin marks the
// start of a read, and Put keeps what the read found only when nothing was
// invalidated since: a value read before a change can never be put after the
// change was announced.
package acctcache

import (
	"bytes"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Forever is a TrustUntil for a cache whose store sees every change.
var Forever = time.Unix(0, math.MaxInt64)

// Cache is a bounded map of accounts by id. It is safe for concurrent use.
type Cache struct {
	max int
	// trusted is TrustUntil's time as nanoseconds since base, so that
	// comparisons use the monotonic clock and a step of the wall clock
	// cannot extend the trust; 0: not trusted, math.MaxInt64: forever.
	trusted atomic.Int64
	base    time.Time
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*storage.Account
	gen     uint64 // counts invalidations, for Begin and Put
}

// New returns an empty cache of at most max accounts, untrusted.
func New(max int, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{max: max, base: now(), now: now, entries: make(map[string]*storage.Account)}
}

// TrustUntil lets Get answer until t, a time read from the cache's clock
// (or Forever); the zero time stops it at once.
func (c *Cache) TrustUntil(t time.Time) {
	switch {
	case t.IsZero():
		c.trusted.Store(0)
	case t.Equal(Forever):
		c.trusted.Store(math.MaxInt64)
	case !t.After(c.base):
		c.trusted.Store(0) // already over
	default:
		c.trusted.Store(int64(t.Sub(c.base)))
	}
}

// Trusted reports whether Get answers now.
func (c *Cache) Trusted() bool {
	switch until := c.trusted.Load(); until {
	case 0:
		return false
	case math.MaxInt64:
		return true
	default:
		return int64(c.now().Sub(c.base)) < until
	}
}

// Get returns a copy of the account id when the cache holds it and is
// trusted now.
func (c *Cache) Get(id string) (*storage.Account, bool) {
	if !c.Trusted() {
		return nil, false
	}
	c.mu.Lock()
	a, ok := c.entries[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return clone(a), true
}

// Mark is the cache's state at the start of a read.
type Mark struct{ gen uint64 }

// Begin marks the start of a read of an account from the store.
func (c *Cache) Begin() Mark {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Mark{gen: c.gen}
}

// Put keeps a copy of a, which a read begun at m found, unless something
// was invalidated since m. A full cache drops an arbitrary entry.
func (c *Cache) Put(m Mark, a *storage.Account) {
	cp := clone(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.gen != c.gen {
		return
	}
	if _, ok := c.entries[a.ID]; !ok && len(c.entries) >= c.max {
		for id := range c.entries {
			delete(c.entries, id)
			break
		}
	}
	c.entries[a.ID] = cp
}

// Load reads the account id with read and keeps a copy of what it found,
// unless something was invalidated while it read (Begin, then Put).
func (c *Cache) Load(id string, read func() (*storage.Account, error)) (*storage.Account, error) {
	mark := c.Begin()
	a, err := read()
	if err == nil {
		c.Put(mark, a)
	}
	return a, err
}

// Distrust stops Get answering and forgets every account, for a store that
// can no longer tell what changed.
func (c *Cache) Distrust() {
	c.TrustUntil(time.Time{})
	c.Reset()
}

// Invalidate forgets the account id, which changed or may have.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, id)
}

// Reset forgets every account, for a store that may have missed changes.
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// Len is the number of accounts held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func clone(a *storage.Account) *storage.Account {
	cp := *a
	cp.KeyJWK = bytes.Clone(a.KeyJWK)
	cp.Contact = slices.Clone(a.Contact)
	return &cp
}
