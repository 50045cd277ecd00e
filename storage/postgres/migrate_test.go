package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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

// A migration statement still running at the deadline is stopped by the
// server too, not only abandoned by the client: an index build left
// running would hold the migration lock.
func TestApplyMigration_StatementStopsAtTheDeadline(t *testing.T) {
	pool := newPool(t, pgtest.Start(t))
	newStore(t, pool, Options{})
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	quick := migration{version: 9998, name: "9998_quick", sql: noTransaction + "SELECT 1;\n"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := applyMigration(ctx, conn.Conn(), quick); err != nil {
		t.Fatal(err)
	}
	var timeout string
	if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&timeout); err != nil || timeout != "0" {
		t.Fatalf("statement_timeout after a migration = %q (%v), want it reset to 0", timeout, err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	slow := migration{version: 9999, name: "9999_slow", sql: noTransaction + "SELECT pg_sleep(60);\n"}
	if err := applyMigration(ctx, conn.Conn(), slow); err == nil {
		t.Fatal("a migration that outlasts its deadline succeeded")
	}
	waitFor(t, "the server stops the statement", func() bool {
		var running int
		err := pool.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'").Scan(&running)
		return err == nil && running == 0
	})
}
