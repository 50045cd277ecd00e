package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// CreateRenewalRule implements storage.RenewalRules.
func (s *Store) CreateRenewalRule(ctx context.Context, r *storage.RenewalRule) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO renewal_rules (namespace, id, scope, value, window_start, window_end,
		explanation_url, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ns, r.ID, r.Kind, r.Value, r.WindowStart, r.WindowEnd, r.ExplanationURL, r.CreatedAt, r.CreatedBy)
	if err != nil {
		return fail(ctx, "create renewal rule", err)
	}
	return nil
}

// RenewalRulesFor implements storage.RenewalRules in one indexed query,
// read afresh on every call: instances sharing the database see a rule as
// soon as it is committed.
func (s *Store) RenewalRulesFor(ctx context.Context, scopes []storage.RenewalScope) ([]*storage.RenewalRule, error) {
	kinds := make([]string, len(scopes))
	values := make([]string, len(scopes))
	for i, sc := range scopes {
		kinds[i], values[i] = sc.Kind, sc.Value
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT id, scope, value, window_start, window_end, explanation_url, created_at, created_by
		FROM renewal_rules WHERE namespace = $1
		AND (scope, value) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, s.ns, kinds, values)
	rules, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storage.RenewalRule, error) {
		var r storage.RenewalRule
		err := row.Scan(&r.ID, &r.Kind, &r.Value, &r.WindowStart, &r.WindowEnd, &r.ExplanationURL, &r.CreatedAt, &r.CreatedBy)
		r.WindowStart, r.WindowEnd, r.CreatedAt = r.WindowStart.UTC(), r.WindowEnd.UTC(), r.CreatedAt.UTC()
		return &r, err
	})
	if err != nil {
		return nil, fail(ctx, "renewal rules", err)
	}
	if rules == nil {
		rules = []*storage.RenewalRule{}
	}
	return rules, nil
}
