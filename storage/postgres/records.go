package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// getRow returns the record of kind named key that query selects with
// args, read by scan; ErrNotFound when it selects none.
func getRow[T any](ctx context.Context, s *Store, kind, key string, scan func(pgx.Row) (*T, error), query string, args ...any) (*T, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := scan(s.pool.QueryRow(ctx, query, args...))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound(kind, key)
	case err != nil:
		return nil, fail(ctx, "get "+kind, err)
	}
	return v, nil
}

// updateRow is the compare-and-swap of the record of kind named key at
// *version: it runs update, a statement of swapSQL, with the namespace, key
// and version as $1 to $3 and set from $4 on, and increments *version when
// it swapped.
func (s *Store) updateRow(ctx context.Context, kind, key string, version *int64, update string, set ...any) error {
	args := append([]any{s.ns, key, *version}, set...)
	if err := s.swap(ctx, "update "+kind, kind, key, update, args...); err != nil {
		return err
	}
	*version++
	return nil
}

// swap runs query, a statement of swapSQL that swaps the record of kind
// named key, with args, and returns nil when it swapped (see swapResult).
func (s *Store) swap(ctx context.Context, op, kind, key, query string, args ...any) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var swapped, exists bool
	if err := s.pool.QueryRow(ctx, query, args...).Scan(&swapped, &exists); err != nil {
		return fail(ctx, op, err)
	}
	return swapResult(kind, key, swapped, exists)
}

func notFound(kind, key string) error {
	return fmt.Errorf("postgres: %s %q: %w", kind, key, storage.ErrNotFound)
}

// swapResult turns the outcome of a compare-and-swap statement (see
// swapSQL) into nil, ErrConflict or ErrNotFound.
func swapResult(kind, key string, swapped, exists bool) error {
	switch {
	case swapped:
		return nil
	case exists:
		return fmt.Errorf("postgres: %s %q changed since it was read: %w", kind, key, storage.ErrConflict)
	}
	return notFound(kind, key)
}

// swapSQL wraps update, an UPDATE whose WHERE names the row by namespace
// ($1) and keyColumn ($2) and compares its version, in a statement that
// returns whether it swapped and whether the row exists (as of the
// statement's snapshot), so one round trip tells a lost swap from a
// missing row. The update is the CTE "swapped"; more CTEs (also) may
// write FROM it, so that they write only when the swap succeeds.
func swapSQL(update, table, keyColumn string, also ...string) string {
	q := "WITH swapped AS (" + update + "\n\tRETURNING 1)"
	for _, cte := range also {
		q += ",\n" + cte
	}
	return q + `
SELECT EXISTS (SELECT 1 FROM swapped),
	EXISTS (SELECT 1 FROM ` + table + ` WHERE namespace = $1 AND ` + keyColumn + ` = $2)`
}
