package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

func TestMigrationStatements(t *testing.T) {
	sql := noTransaction + "-- a comment\nDROP INDEX CONCURRENTLY IF EXISTS a;\n\n-- another\nCREATE INDEX CONCURRENTLY a\n\tON t (x) WHERE y <> 'z';\n"
	want := []string{"DROP INDEX CONCURRENTLY IF EXISTS a", "CREATE INDEX CONCURRENTLY a\n\tON t (x) WHERE y <> 'z'"}
	if got := migrationStatements(sql); !slices.Equal(got, want) {
		t.Fatalf("statements = %q, want %q", got, want)
	}
}

// A migration that runs outside a transaction may fail halfway and run
// again at the next start: each of its statements must succeed again, and
// leave valid indexes.
func TestMigrations_WithoutTransactionRunAgain(t *testing.T) {
	pool := newPool(t, pgtest.Start(t))
	newStore(t, pool, Options{})
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ran := 0
	for _, m := range ms {
		if !strings.HasPrefix(m.sql, noTransaction) {
			continue
		}
		ran++
		for _, stmt := range migrationStatements(m.sql) {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s, run again: %v", m.name, err)
			}
		}
	}
	if ran == 0 {
		t.Fatal("no migration runs outside a transaction")
	}
	var invalid int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").Scan(&invalid); err != nil || invalid != 0 {
		t.Fatalf("%d invalid indexes (%v)", invalid, err)
	}
}
