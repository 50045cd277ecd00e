// Package postgres is a storage backend on PostgreSQL, for gateways that
// run as several instances behind one name. It implements storage.Store
// and storage.Nonces.
//
// # Tables and namespaces
//
// The schema is a list of embedded, numbered migrations. New applies the
// missing ones while it holds a session advisory lock on a connection of
// its own, so that instances starting together migrate once; each
// migration and its row in schema_migrations commit together, but for
// those that build indexes CONCURRENTLY, which run statement by statement
// so that instances still serving are not blocked (see noTransaction). A
// large table makes them slow: give New a deadline (start_timeout) that
// allows for it. Every table
// is keyed by a namespace (one gateway name), so several gateways may
// share a database. Columns hold everything the protocol looks up, and
// each lookup has its index: accounts by key thumbprint, orders by
// account, valid authorizations by account and identifier, certificates
// by serial and by account, registrations by key id, renewal rules by
// scope, replacement claims by serial.
//
// # One round trip per call, and atomic
//
// Every method that serves a request is one SQL statement, so it is atomic
// without an explicit transaction and costs one round trip (once pgx has
// prepared the statement on the connection; it caches it there). NewNonce
// costs none, and RedeemNonce shares its statement with concurrent calls
// (see Nonces). Updates are compare-and-swaps:
//
//	UPDATE ... SET ..., version = version + 1
//	WHERE namespace = $1 AND id = $2 AND version = $3
//
// inside a WITH whose outer SELECT also reports whether the row exists,
// which tells ErrConflict (it does) from ErrNotFound (it does not) without
// a second query. The writes that must happen together are data-modifying
// CTEs of one statement: StoreCertificate inserts the certificate only
// FROM the order row its swap updated, BindAccount inserts the account
// only FROM the registration row its swap updated, and CreateOrder inserts
// the new authorizations and the order. PostgreSQL row locks make the
// second of two racing swaps wait and then see the new version, so of two
// instances finalizing one order exactly one stores a certificate; a
// duplicate key (SQLSTATE 23505) aborts the whole statement and is
// ErrConflict.
//
// # Accounts in memory
//
// Every kid-signed request loads its account, a third of all statements.
// GetAccount keeps the accounts it read, at most cachedAccounts, and a
// goroutine LISTENs on a connection of its own for the notifications that a
// trigger sends on every change to an account row, whichever instance or
// statement makes it (while triggers fire); it forgets an account when it
// hears of its change.
// The cache answers only while the store can prove that it hears: a probe
// notification sent through the pool every second must come back, and
// PostgreSQL delivers notifications in commit order, so a returned probe
// proves every earlier change heard. When the connection fails, or behind
// a pooler that drops notifications, every load reads the database. See
// accountwatch.go.
//
// # Nonces
//
// NewNonce does not touch the database. A nonce is 16 random bytes and
// its expiry time, authenticated with HMAC-SHA256 under a key that all
// instances of a namespace share: New creates it once (INSERT ... ON
// CONFLICT DO NOTHING, then SELECT) and keeps it in memory. RedeemNonce
// checks the MAC and the expiry in memory, so that forged, garbled and
// expired nonces cost nothing. The others share statements: a call that
// finds no redemption in flight leads and inserts its nonce at once, as
// a single INSERT ... ON CONFLICT DO NOTHING, under its own ctx; calls
// that come meanwhile queue, and when it ends a goroutine redeems the
// queue, up to 256 at a time, in one statement each, until none is left:
//
//	INSERT INTO nonces_used (namespace, nonce, expires)
//	SELECT $1, nonce, expires FROM unnest($2, $3) ... ORDER BY nonce
//	ON CONFLICT DO NOTHING RETURNING nonce
//
// The primary key (namespace, nonce) lets one insert succeed, whichever
// instance it reaches; a nonce not inserted was used before, which is
// ErrNotFound, and so is a nonce's second presentation in one batch.
// Batches insert in key order, so that two instances' batches that share
// nonces cannot deadlock. A failed statement fails every call of its
// batch, as a statement of each would have. A queued call whose ctx ends
// returns at once and may or may not have used its nonce; the batch runs
// under its own Options.Timeout, whoever leaves it.
//
// The nonce carries its own expiry (under the MAC), so instances
// configured with different lifetimes agree on it. Cleanup deletes a used
// nonce only nonceSkew after its expiry, when every instance whose clock
// is within nonceSkew of the cleaner's refuses it by its expiry alone, so
// a replay never finds its row gone while the nonce still verifies.
//
// # Rate limit counts
//
// The store is the gateway's gateway.Counter, so that the instances of a
// namespace count their rate limits together. A count is a row of
// rate_counts keyed by (namespace, limit, window start, key); AddCount is
// one INSERT ... ON CONFLICT DO UPDATE ... WHERE count + n <= max
// RETURNING count, which adds only below the limit and, by the row lock,
// gives the last slot to one of racing instances. HighestCount is one
// SELECT over the keys of a request.
//
// # Failures
//
// Without a deadline in ctx, each call gets Options.Timeout. Errors that
// mean the database cannot be reached (refused or broken connections,
// timeouts, a server shutting down) wrap storage.ErrUnavailable; the pool
// reconnects by itself when the database returns. Times are stored with
// microsecond precision, PostgreSQL's.
//
// # Cleanup
//
// A goroutine removes used nonces past their expiry, the rate counts of
// windows that have ended, and orders and
// authorizations that expired Options.CleanupGrace ago and are not valid,
// in batches of at most 1000 rows, while it holds a per-namespace advisory
// lock, so one instance at a time does the work. Accounts, certificates,
// registrations (but by officers), audit entries, renewal rules,
// replacement claims and valid orders and authorizations are never
// deleted. A claim outlives the order it names when the cleanup deletes
// that order; the gateway treats a claim whose order is gone as dead, and
// a new order takes it over.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/acctcache"
)

// Defaults of Options.
const (
	DefaultNonceLifetime   = 30 * time.Minute
	DefaultTimeout         = 5 * time.Second
	DefaultCleanupInterval = time.Minute
	DefaultCleanupGrace    = 7 * 24 * time.Hour
	// MaxCleanupBatch is the most rows one cleanup statement deletes.
	MaxCleanupBatch = 1000
)

// cachedAccounts is how many accounts GetAccount keeps in memory.
const cachedAccounts = 10000

// nonceSkew is how long a used nonce is remembered after it expires: the
// clocks of a namespace's instances must agree within it.
const nonceSkew = 10 * time.Minute

// Options configure a Store.
type Options struct {
	// Namespace names the gateway whose records the store holds; gateways
	// sharing a database need distinct namespaces. Default "default".
	Namespace string
	// NonceLifetime is how long a new nonce stays valid. Default 30 minutes.
	NonceLifetime time.Duration
	// Timeout bounds each call whose ctx has no deadline. Default 5 s.
	Timeout time.Duration
	// CleanupInterval is how often expired rows are deleted. Default one
	// minute; negative: never (tests call Cleanup themselves).
	CleanupInterval time.Duration
	// CleanupGrace is how long after their expiry orders and
	// authorizations that are not valid are kept. Default 7 days.
	CleanupGrace time.Duration
	// CleanupBatch is the most rows one delete statement removes; at most
	// and by default MaxCleanupBatch.
	CleanupBatch int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives failures of the background cleanup and of the watch
	// for account changes (accountwatch.go). Default: none.
	Logger *slog.Logger
}

// Store is a storage.Store and storage.Nonces on PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	ns       string
	nonceKey []byte
	opts     Options

	nonces nonceBatcher
	// cached holds accounts read by id while changes are heard (see
	// accountwatch.go).
	cached *acctcache.Cache
	// probeSender, when set (by tests), sends the watch's probes.
	probeSender atomic.Pointer[func(ctx context.Context, channel, payload string) error]

	stop      context.CancelFunc
	done      chan struct{} // the cleanup returned
	watchDone chan struct{} // watchAccounts returned
	stopOnce  sync.Once
}

// New migrates the database's schema if needed, loads the namespace's
// nonce key and starts the background cleanup. The pool stays the
// caller's: Close does not close it.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.NonceLifetime <= 0 {
		opts.NonceLifetime = DefaultNonceLifetime
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = DefaultCleanupInterval
	}
	if opts.CleanupGrace <= 0 {
		opts.CleanupGrace = DefaultCleanupGrace
	}
	if opts.CleanupBatch <= 0 || opts.CleanupBatch > MaxCleanupBatch {
		opts.CleanupBatch = MaxCleanupBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, ns: opts.Namespace, opts: opts, done: make(chan struct{}), watchDone: make(chan struct{}),
		cached: acctcache.New(cachedAccounts, nil)}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.loadNonceKey(ctx); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.nonces.bg = bg
	go s.cleanupLoop(bg)
	go s.watchAccounts(bg)
	return s, nil
}

// Close stops the background cleanup and the nonce batches and waits for
// them: queued redemptions and the batch in flight fail, and so do later
// redemptions; one in flight alone runs on under its caller's ctx. It
// does not close the pool.
func (s *Store) Close() {
	s.stopOnce.Do(func() {
		s.stop()
		<-s.done
		<-s.watchDone
		s.closeNonces()
	})
}

// withTimeout gives ctx the store's timeout unless it has a deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opts.Timeout)
}

// unlock releases the session advisory lock key held on conn and gives
// conn back to the pool. When that fails it closes the connection, which
// releases the lock too, rather than pool a connection that holds it.
func (s *Store) unlock(conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	var released bool
	if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
		dropConn(conn)
		return
	}
	conn.Release()
}

// dropConn closes conn instead of returning it to the pool, ending its
// session and the advisory locks the session holds.
func dropConn(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Hijack().Close(ctx)
}

// fail wraps err of the operation op in the storage error it means.
func fail(ctx context.Context, op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40001" || pgErr.Code == "40P01"):
		// Unique violation; serialization failure and deadlock lose a race too.
		return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrConflict, err)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up; the database may be fine.
		return fmt.Errorf("postgres: %s: %w", op, err)
	case unavailable(err):
		return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable reports whether err means the database cannot be reached or
// cannot serve now, so that the same request may succeed later.
func unavailable(err error) bool {
	var (
		pgErr      *pgconn.PgError
		netErr     net.Error
		connectErr *pgconn.ConnectError
	)
	if errors.As(err, &pgErr) {
		if pgErr.Code == "25006" { // read-only: a primary turned standby in a failover
			return true
		}
		class := pgErr.Code
		if len(class) > 2 {
			class = class[:2]
		}
		switch class {
		case "08", // connection exception
			"53", // insufficient resources, too many connections
			"57": // operator intervention: shutdown, cannot connect now
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// fromNull returns the time of t, the zero time for NULL, in UTC.
func fromNull(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// Interface guards.
var (
	_ storage.Store   = (*Store)(nil)
	_ storage.Nonces  = (*Store)(nil)
	_ storage.Expirer = (*Store)(nil)
)
