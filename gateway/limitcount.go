package gateway

import (
	"context"
	"sync"
	"time"
)

// MemoryCounter is a Counter in memory, for one process: gateways whose
// storage is not shared by several instances. Counts are forgotten once
// their window has ended.
type MemoryCounter struct {
	now func() time.Time

	mu     sync.Mutex
	counts map[counterKey]*counted
	// swept is the size of counts after the last sweep; the next sweep
	// waits until it has doubled, so that sweeping costs O(1) per Add.
	swept int
}

type counterKey struct {
	limit, key string
	start      int64 // Unix nanoseconds
}

type counted struct {
	n    int
	ends time.Time
}

// NewMemoryCounter returns an empty counter; now tells when windows have
// ended (nil: time.Now).
func NewMemoryCounter(now func() time.Time) *MemoryCounter {
	if now == nil {
		now = time.Now
	}
	return &MemoryCounter{now: now, counts: make(map[counterKey]*counted)}
}

// AddCount implements Counter.
func (c *MemoryCounter) AddCount(_ context.Context, limit, key string, start time.Time, window time.Duration, n, most int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := counterKey{limit, key, start.UnixNano()}
	v := c.counts[k]
	switch {
	case v == nil && n <= 0:
		return true, nil // nothing to give back to
	case n > 0 && (v == nil && n > most || v != nil && v.n+n > most):
		return false, nil
	case v == nil:
		c.sweep()
		v = &counted{ends: start.Add(window)}
		c.counts[k] = v
	}
	v.n = max(v.n+n, 0)
	return true, nil
}

// HighestCount implements Counter.
func (c *MemoryCounter) HighestCount(_ context.Context, limit string, keys []string, start time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	highest := 0
	for _, key := range keys {
		if v := c.counts[counterKey{limit, key, start.UnixNano()}]; v != nil && v.n > highest {
			highest = v.n
		}
	}
	return highest, nil
}

// sweep forgets the counts of ended windows once counts has doubled.
func (c *MemoryCounter) sweep() {
	if len(c.counts) < 2*c.swept+64 {
		return
	}
	now := c.now()
	for k, v := range c.counts {
		if !now.Before(v.ends) {
			delete(c.counts, k)
		}
	}
	c.swept = len(c.counts)
}

var _ Counter = (*MemoryCounter)(nil)
