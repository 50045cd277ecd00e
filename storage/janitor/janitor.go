// Package janitor deletes, in the background and in bounded batches, what a
// store keeps past its expiry (see storage.Expirer), so that the store stays
// bounded under a steady load of orders that are never finished. The
// PostgreSQL backend runs a cleanup of its own, which also takes the used
// nonces and lets one instance at a time do the work.
package janitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Defaults of Options.
const (
	DefaultInterval = time.Minute
	// DefaultGrace is the PostgreSQL backend's too: an order that has
	// expired stays a week for clients and officers who look it up.
	DefaultGrace = 7 * 24 * time.Hour
	DefaultBatch = 500
)

// Options set a janitor up; the zero value means the defaults.
type Options struct {
	// Interval is how often it deletes. Default one minute.
	Interval time.Duration
	// Grace is how long after their expiry records are deleted. Default
	// seven days.
	Grace time.Duration
	// Batch is the most records one call of DeleteExpired deletes. Default 500.
	Batch int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger hears of failures and of what was deleted. Default: discard.
	Logger *slog.Logger
}

// Janitor is a goroutine that deletes what has expired.
type Janitor struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts deleting what s keeps that expired opts.Grace ago, every
// opts.Interval, until Stop.
func Start(s storage.Expirer, opts Options) *Janitor {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &Janitor{cancel: cancel, done: make(chan struct{})}
	go j.run(ctx, s, opts)
	return j
}

// Stop stops the janitor and waits until a batch it is deleting is done.
func (j *Janitor) Stop() {
	j.cancel()
	<-j.done
}

func (j *Janitor) run(ctx context.Context, s storage.Expirer, opts Options) {
	defer close(j.done)
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, batches, err := Sweep(ctx, s, opts.Now().Add(-opts.Grace), opts.Batch)
		switch {
		case err != nil && ctx.Err() == nil:
			opts.Logger.Warn("deleting expired records failed", "deleted", n, "error", err)
		case n > 0:
			opts.Logger.Debug("deleted expired records", "deleted", n, "batches", batches)
		}
	}
}

// Sweep deletes what expired before before, batch records a call, until a
// call deletes fewer, and returns how many it deleted in how many calls.
// Each call is its own transaction, so requests are served in between.
func Sweep(ctx context.Context, s storage.Expirer, before time.Time, batch int) (deleted, batches int, err error) {
	for {
		n, err := s.DeleteExpired(ctx, before, batch)
		deleted += n
		batches++
		if err != nil || n < batch {
			return deleted, batches, err
		}
		if err := ctx.Err(); err != nil {
			return deleted, batches, err
		}
	}
}
