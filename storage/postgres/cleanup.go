package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"
)

// CleanupResult says what one Cleanup pass did.
type CleanupResult struct {
	// Locked is false when another instance held the namespace's cleanup
	// lock; then nothing was deleted.
	Locked bool
	// Rows deleted.
	Nonces, Orders, Authzs, Counts int64
	// Batches is how many delete statements ran.
	Batches int
}

// cleanupLock is the advisory lock key of the namespace's cleanup.
func (s *Store) cleanupLock() int64 {
	h := fnv.New64a()
	h.Write([]byte("caddyacmegw cleanup\x00" + s.ns))
	return int64(h.Sum64())
}

// The deletes of a cleanup pass. Each takes the namespace ($1), a cut-off
// time ($2) and a batch size ($3). Deleting by ctid from a bounded SELECT
// keeps each statement, its locks and its WAL small; a row updated
// meanwhile has a new ctid and is left for the next pass.
const (
	deleteNonces = `DELETE FROM nonces_used WHERE ctid IN (
	SELECT ctid FROM nonces_used WHERE namespace = $1 AND expires < $2 LIMIT $3)`
	deleteOrders = `DELETE FROM orders WHERE ctid IN (
	SELECT ctid FROM orders WHERE namespace = $1 AND expires < $2 AND status <> 'valid' LIMIT $3)`
	deleteAuthzs = `DELETE FROM authzs WHERE ctid IN (
	SELECT ctid FROM authzs WHERE namespace = $1 AND expires < $2 AND status <> 'valid' LIMIT $3)`
	deleteCounts = `DELETE FROM rate_counts WHERE ctid IN (
	SELECT ctid FROM rate_counts WHERE namespace = $1 AND expires < $2 LIMIT $3)`
)

// Cleanup deletes, if no other instance is doing so, used nonces that
// expired nonceSkew ago, the counts of rate limit windows that have
// ended, and orders and authorizations that are not valid
// and expired Options.CleanupGrace ago, in batches of Options.CleanupBatch
// rows. The background cleanup calls it every Options.CleanupInterval.
func (s *Store) Cleanup(ctx context.Context) (CleanupResult, error) {
	var res CleanupResult
	key := s.cleanupLock()
	lctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(lctx)
	if err != nil {
		return res, fail(lctx, "cleanup", err)
	}
	if err := conn.QueryRow(lctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&res.Locked); err != nil {
		dropConn(conn) // it may hold the lock
		return res, fail(lctx, "cleanup: lock", err)
	}
	if !res.Locked {
		conn.Release()
		return res, nil
	}
	defer s.unlock(conn, key)

	now := s.opts.Now()
	for _, d := range []struct {
		sql     string
		cutoff  time.Time
		deleted *int64
	}{
		{deleteNonces, now.Add(-nonceSkew), &res.Nonces},
		{deleteOrders, now.Add(-s.opts.CleanupGrace), &res.Orders},
		{deleteAuthzs, now.Add(-s.opts.CleanupGrace), &res.Authzs},
		{deleteCounts, now, &res.Counts},
	} {
		for {
			qctx, cancel := s.withTimeout(ctx)
			tag, err := conn.Exec(qctx, d.sql, s.ns, d.cutoff, s.opts.CleanupBatch)
			cancel()
			if err != nil {
				return res, fail(ctx, "cleanup", err)
			}
			res.Batches++
			*d.deleted += tag.RowsAffected()
			if tag.RowsAffected() < int64(s.opts.CleanupBatch) {
				break
			}
		}
	}
	return res, nil
}

// DeleteExpired implements storage.Expirer with the deletes of Cleanup, at
// most limit rows in all, without the cleanup lock; the background cleanup
// does not call it.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("postgres: DeleteExpired limit %d is not positive", limit)
	}
	n := 0
	for _, sql := range []string{deleteOrders, deleteAuthzs} {
		qctx, cancel := s.withTimeout(ctx)
		tag, err := s.pool.Exec(qctx, sql, s.ns, before, limit-n)
		cancel()
		if err != nil {
			return n, fail(ctx, "delete expired", err)
		}
		if n += int(tag.RowsAffected()); n == limit {
			break
		}
	}
	return n, nil
}

// cleanupLoop runs Cleanup every Options.CleanupInterval until ctx ends.
func (s *Store) cleanupLoop(ctx context.Context) {
	defer close(s.done)
	if s.opts.CleanupInterval < 0 {
		return
	}
	tick := time.NewTicker(s.opts.CleanupInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		res, err := s.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Logger.Warn("cleanup failed", "namespace", s.ns, "error", err)
		case res.Nonces+res.Orders+res.Authzs+res.Counts > 0:
			s.opts.Logger.Debug("cleanup", "namespace", s.ns, "nonces", res.Nonces, "orders", res.Orders,
				"authzs", res.Authzs, "rate_counts", res.Counts, "batches", res.Batches)
		}
	}
}
