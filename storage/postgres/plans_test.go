package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// explain returns the generic plan (pgx's prepared statements get
// generic plans) of sql for the arguments args, a SQL list.
func explain(t *testing.T, tx pgx.Tx, sql, args string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := tx.Exec(ctx, "PREPARE q AS "+sql); err != nil {
		t.Fatal(err)
	}
	defer tx.Exec(ctx, "DEALLOCATE q") //nolint:errcheck // the transaction rolls back
	rows, _ := tx.Query(ctx, "EXPLAIN EXECUTE q ("+args+")")
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// The cleanup's indexes hold only what it deletes, records that are not
// valid, so that no plan can use them for the lookup of a valid
// authorization: with too few statistics, in a new database, generic plans
// did, scanning every unexpired authorization of the namespace for each
// new order.
func TestPlans_CleanupIndexesServeOnlyTheCleanup(t *testing.T) {
	pool := newPool(t, pgtest.Start(t))
	newStore(t, pool, Options{})
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing to keep
	for _, sql := range []string{
		"SET LOCAL plan_cache_mode = force_generic_plan",
		"SET LOCAL enable_seqscan = off",
		"DROP INDEX authzs_valid", // leaves the cleanup's index the only candidate
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	lookup := explain(t, tx, `SELECT `+authzColumns+` FROM authzs
		WHERE namespace = $1 AND account_id = $2 AND ident_type = $3 AND ident_value = $4 AND wildcard = $5
			AND status = 'valid' AND expires > $6::timestamptz
		ORDER BY expires DESC LIMIT 1`, "'default', 'a', 'dns', 'example.com', false, now()")
	if strings.Contains(lookup, "authzs_cleanup") {
		t.Fatalf("the valid-authorization lookup can use the cleanup's index:\n%s", lookup)
	}
	for table, sql := range map[string]string{"authzs": deleteAuthzs, "orders": deleteOrders} {
		plan := explain(t, tx, sql, "'default', now(), 1000")
		if !strings.Contains(plan, table+"_cleanup") {
			t.Fatalf("the cleanup of %s does not use %s_cleanup:\n%s", table, table, plan)
		}
	}
}
