package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// maxNonceBatch is the most redemptions one statement carries.
const maxNonceBatch = 256

// redeemNoncesSQL inserts a batch of nonces ($2) with their expiry times
// ($3) and returns those it inserted: the nonces not used before. An
// insert that meets another statement's uncommitted insert of its nonce
// waits for that statement to end, so two batches that share nonces
// would deadlock if they took them in different orders: every batch
// takes them in key order.
const redeemNoncesSQL = `INSERT INTO nonces_used (namespace, nonce, expires)
SELECT $1, nonce, expires FROM unnest($2::bytea[], $3::timestamptz[]) AS batch (nonce, expires)
ORDER BY nonce
ON CONFLICT DO NOTHING
RETURNING nonce`

// redeemNonceSQL is redeemNoncesSQL for one nonce, which costs the
// database less to run.
const redeemNonceSQL = `INSERT INTO nonces_used (namespace, nonce, expires) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`

var (
	// errBadNonce is a nonce that is not one of ours, or has expired.
	errBadNonce  = fmt.Errorf("postgres: nonce: %w", storage.ErrNotFound)
	errNonceUsed = fmt.Errorf("postgres: nonce used before: %w", storage.ErrNotFound)
	// errClosed is what RedeemNonce returns once Close has begun, as
	// unavailable as a closed pool.
	errClosed = fmt.Errorf("postgres: nonce: store closed: %w", storage.ErrUnavailable)
)

// nonceBatcher group-commits nonce redemptions. A caller that finds no
// round trip in flight leads: it redeems its nonce at once, alone, as if
// there were no batching. Callers that come while a round trip is in
// flight queue, and when it ends a runner goroutine redeems the queue,
// up to maxNonceBatch in one statement, until none is left. Under load
// the runner is always busy, and each of its statements carries the
// redemptions that came during the one before.
type nonceBatcher struct {
	// bg is the store's lifetime, which Close ends: the runner's
	// statements run under it, since no caller may cancel them for the
	// others.
	bg context.Context

	mu sync.Mutex
	// busy: a leader or the runner has a round trip in flight, and will
	// hand the queue on when it ends.
	busy    bool
	closed  bool          // Close has begun; the queue stays empty
	queue   []*redemption // for the round trip after the one in flight
	runners sync.WaitGroup

	// statements counts the statements run, so that tests see batching.
	statements atomic.Int64
}

// A redemption is one caller's nonce.
type redemption struct {
	nonce   []byte // the random part: nonces_used's key
	expires time.Time
	// result takes a queued caller's answer; buffered, so that the runner
	// never waits for a caller that left.
	result chan error
}

// redeem leads or queues r and returns its answer. A queued caller whose
// ctx ends first returns ctx's error, and its nonce may or may not be
// used by then: its request fails anyway, and no nonce is accepted twice.
func (s *Store) redeem(ctx context.Context, r *redemption) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	b := &s.nonces
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed
	}
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		// Alone in its round trip, the leader runs it under its own ctx:
		// its leaving cancels nobody else's redemption.
		fresh, err := s.insertNonce(ctx, r.nonce, r.expires)
		s.handOver()
		if err == nil && !fresh {
			err = errNonceUsed
		}
		return err
	}
	r.result = make(chan error, 1)
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return fail(ctx, "nonce", ctx.Err())
	}
}

// handOver gives the redemptions queued during a leader's round trip to
// a runner, or, when there are none, lets the next caller lead.
func (s *Store) handOver() {
	b := &s.nonces
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.busy = false
		return
	}
	b.runners.Go(s.runQueue)
}

// runQueue redeems the queue, a batch at a time, until it is empty.
func (s *Store) runQueue() {
	b := &s.nonces
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxNonceBatch)
		if n == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		s.redeemBatch(batch)
	}
}

// closeNonces fails the queued redemptions and waits for the runner,
// whose statement Close has cancelled.
func (s *Store) closeNonces() {
	b := &s.nonces
	b.mu.Lock()
	b.closed = true
	queued := b.queue
	b.queue = nil
	b.mu.Unlock()
	for _, r := range queued {
		r.result <- errClosed
	}
	b.runners.Wait()
}

// redeemBatch answers each redemption of batch: nil to the first to
// present a nonce that the statement inserted; ErrNotFound to the others,
// whose nonce was used before or earlier in this batch; the statement's
// error to all when it fails, as a single redemption would have failed.
func (s *Store) redeemBatch(batch []*redemption) {
	ctx, cancel := s.withTimeout(s.nonces.bg)
	defer cancel()
	fresh, err := s.insertNonces(ctx, batch)
	if err != nil && s.nonces.bg.Err() != nil {
		err = errClosed
	}
	for _, r := range batch {
		switch {
		case err != nil:
			r.result <- err
		case fresh[string(r.nonce)]:
			delete(fresh, string(r.nonce))
			r.result <- nil
		default:
			r.result <- errNonceUsed
		}
	}
}

// insertNonces inserts the nonces of batch, each once, and returns the set
// of those that were not used before.
func (s *Store) insertNonces(ctx context.Context, batch []*redemption) (map[string]bool, error) {
	nonces := make([][]byte, 0, len(batch))
	expires := make([]time.Time, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if !seen[string(r.nonce)] {
			seen[string(r.nonce)] = true
			nonces = append(nonces, r.nonce)
			expires = append(expires, r.expires)
		}
	}
	if len(nonces) == 1 {
		fresh, err := s.insertNonce(ctx, nonces[0], expires[0])
		return map[string]bool{string(nonces[0]): fresh}, err
	}
	s.nonces.statements.Add(1)
	rows, _ := s.pool.Query(ctx, redeemNoncesSQL, s.ns, nonces, expires)
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fail(ctx, "nonce", err)
	}
	clear(seen)
	for _, n := range inserted {
		seen[string(n)] = true
	}
	return seen, nil
}

// insertNonce inserts one nonce and reports whether it was not used
// before.
func (s *Store) insertNonce(ctx context.Context, nonce []byte, expires time.Time) (bool, error) {
	s.nonces.statements.Add(1)
	tag, err := s.pool.Exec(ctx, redeemNonceSQL, s.ns, nonce, expires)
	if err != nil {
		return false, fail(ctx, "nonce", err)
	}
	return tag.RowsAffected() == 1, nil
}
