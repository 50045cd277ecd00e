package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationFiles are the schema's migrations, NNNN_name.sql, applied in
// the order of their numbers. A migration, once released, never changes:
// a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key (per database) that instances
// hold while they migrate: "acmegw" and 1.
const migrationLock int64 = 0x61636d656777_0001

// migrateTimeout bounds New's migration when ctx has no deadline. It is
// longer than a query's, since an instance may wait for another's.
const migrateTimeout = 2 * time.Minute

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %s is not numbered", name)
		}
		sql, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		// A checkout with CRLF line ends must not hide noTransaction.
		text := strings.ReplaceAll(string(sql), "\r\n", "\n")
		ms = append(ms, migration{version: v, name: base, sql: text})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("postgres: migrations %s and %s share a number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the migrations that the database lacks, each with its
// schema_migrations row in one transaction (but noTransaction ones), while
// it holds migrationLock on a connection of its own: instances starting
// together wait for the first, then find nothing left to do.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, migrateTimeout)
		defer cancel()
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fail(ctx, "migrate", err)
	}
	if err := lockMigrations(ctx, conn.Conn()); err != nil {
		dropConn(conn) // it may hold the lock
		return fail(ctx, "migrate: waiting for another instance's migration", err)
	}
	// A connection a migration failed on may keep its session settings
	// (statement_timeout): it ends with its session, lock and all.
	pooled := true
	defer func() {
		if pooled {
			s.unlock(conn, migrationLock)
		} else {
			dropConn(conn)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fail(ctx, "migrate", err)
	}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fail(ctx, "migrate", err)
	}
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			pooled = false
			return fail(ctx, "migration "+m.name, err)
		}
	}
	return nil
}

// lockPoll is how often an instance asks for migrationLock while another
// holds it.
const lockPoll = 100 * time.Millisecond

// lockMigrations takes migrationLock, asking again every lockPoll rather
// than waiting inside a statement: CREATE INDEX CONCURRENTLY, in the
// migrating session, waits for every transaction open when it starts, and
// a waiting pg_advisory_lock is one that waits for it in turn.
func lockMigrations(ctx context.Context, conn *pgx.Conn) error {
	for {
		var locked bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", migrationLock).Scan(&locked); err != nil {
			return err
		}
		if locked {
			return nil
		}
		if err := sleep(ctx, lockPoll); err != nil {
			return err
		}
	}
}

// sleep waits d, or until ctx ends: then it returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// noTransaction starts a migration whose statements run one by one,
// outside a transaction: CREATE INDEX CONCURRENTLY, which does not block
// the instances still serving, cannot run inside one. Such a migration
// must hold plain statements ending in ";" at the end of a line, and each
// must be safe to run again (IF EXISTS, IF NOT EXISTS), since a failure
// halfway leaves the ones before it done and the migration not recorded.
// Keep each such migration to one index, so that work done is recorded.
// An instance of a version from before noTransaction, started while one
// runs, waits for the lock inside a statement, which an index build waits
// for in turn: PostgreSQL reports the deadlock, and the migration starts
// over until its deadline. Do not start older instances meanwhile.
const noTransaction = "-- acmegw:no-transaction\n"

const recordMigration = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"

// applyMigration runs m and records it: in one transaction, or statement by
// statement (noTransaction) and then the record. An error may leave conn
// with the migration's statement_timeout: the caller must not pool it.
func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) (err error) {
	if !strings.HasPrefix(m.sql, noTransaction) {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, recordMigration, m.version, m.name)
			return err
		})
	}
	// The server must stop a statement when ctx ends, or an index build
	// would run on, holding migrationLock. pgx sends a cancel request when
	// it gives up a connection; statement_timeout does not depend on that
	// request reaching the server (through a pooler, say).
	if deadline, ok := ctx.Deadline(); ok {
		ms := max(time.Until(deadline).Milliseconds(), 1)
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET statement_timeout = %d", ms)); err != nil {
			return err
		}
		defer func() {
			resetCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, rerr := conn.Exec(resetCtx, "RESET statement_timeout"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("reset statement_timeout: %w", rerr))
			}
		}()
	}
	for {
		err := runStatements(ctx, conn, migrationStatements(m.sql))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "40P01" && ctx.Err() == nil {
			// An index build waits for older transactions; an instance of
			// an older version waiting in pg_advisory_lock is one, and
			// waits for us. PostgreSQL broke the cycle: start over (every
			// statement may run again).
			if err := sleep(ctx, lockPoll); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, recordMigration, m.version, m.name)
		return err
	}
}

// runStatements runs stmts one by one.
func runStatements(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// migrationStatements splits a noTransaction migration into its statements, without
// the comment lines.
func migrationStatements(sql string) []string {
	var out []string
	for _, chunk := range strings.SplitAfter(sql, ";\n") {
		var lines []string
		for _, line := range strings.Split(chunk, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, line)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}
