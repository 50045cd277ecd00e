package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// takeCount adds $5 to a count, inserting it when it is new, unless the
// sum would exceed $7; a refused addition returns no row. One statement,
// so that instances racing for the last slot of a window cannot both win:
// the second waits on the first's row lock and then sees its count.
const takeCount = `INSERT INTO rate_counts AS r (namespace, name, key, window_start, count, expires)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (namespace, name, window_start, key) DO UPDATE SET count = r.count + $5
WHERE r.count + $5 <= $7
RETURNING count`

// giveCount gives back what a failed request took.
const giveCount = `UPDATE rate_counts SET count = GREATEST(count + $5, 0)
WHERE namespace = $1 AND name = $2 AND key = $3 AND window_start = $4`

// AddCount implements gateway.Counter: the counts are shared by every
// instance of the namespace. It costs one statement.
func (s *Store) AddCount(ctx context.Context, limit, key string, start time.Time, window time.Duration, n, max int) (bool, error) {
	if n > max {
		return false, nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if n <= 0 {
		if _, err := s.pool.Exec(ctx, giveCount, s.ns, limit, key, start, n); err != nil {
			return false, fail(ctx, "rate count", err)
		}
		return true, nil
	}
	var count int
	err := s.pool.QueryRow(ctx, takeCount, s.ns, limit, key, start, n, start.Add(window), max).Scan(&count)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fail(ctx, "rate count", err)
	}
	return true, nil
}

// HighestCount implements gateway.Counter in one statement.
func (s *Store) HighestCount(ctx context.Context, limit string, keys []string, start time.Time) (int, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var count int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(count), 0) FROM rate_counts
WHERE namespace = $1 AND name = $2 AND window_start = $3 AND key = ANY($4)`, s.ns, limit, start, keys).Scan(&count)
	if err != nil {
		return 0, fail(ctx, "rate count", err)
	}
	return count, nil
}
