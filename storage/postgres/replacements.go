package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// ClaimReplacement implements storage.Replacements in one statement: an
// insert when there is no claim yet, else a compare-and-swap.
func (s *Store) ClaimReplacement(ctx context.Context, serial, orderID, prevOrderID string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	sql := `UPDATE replacement_claims SET order_id = $3 WHERE namespace = $1 AND serial = $2 AND order_id = $4`
	args := []any{s.ns, serial, orderID, prevOrderID}
	if prevOrderID == "" {
		sql = `INSERT INTO replacement_claims (namespace, serial, order_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
		args = args[:3]
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fail(ctx, "claim replacement", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: replacement of %q: %w", serial, storage.ErrConflict)
	}
	return nil
}

// ReplacementClaim implements storage.Replacements.
func (s *Store) ReplacementClaim(ctx context.Context, serial string) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var id string
	err := s.pool.QueryRow(ctx, `SELECT order_id FROM replacement_claims WHERE namespace = $1 AND serial = $2`,
		s.ns, serial).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: replacement of %q: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return "", fail(ctx, "replacement claim", err)
	}
	return id, nil
}
