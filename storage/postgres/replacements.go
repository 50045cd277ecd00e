package postgres

import (
	"context"
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
	id, err := getRow(ctx, s, "replacement claim", serial, scanClaim,
		`SELECT order_id FROM replacement_claims WHERE namespace = $1 AND serial = $2`, s.ns, serial)
	if err != nil {
		return "", err
	}
	return *id, nil
}

// scanClaim reads the order id of a replacement claim.
func scanClaim(row pgx.Row) (*string, error) {
	var id string
	if err := row.Scan(&id); err != nil {
		return nil, err
	}
	return &id, nil
}
