package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Accounts in memory: GetAccount serves the accounts it read from an
// acctcache while this instance can prove that it hears of every change to
// them, whichever instance or statement makes it (while triggers fire).
//
// Migration 0002's triggers notify accountsChannel with "<namespace> <id>"
// on every UPDATE or DELETE of an account row, and with "*" on a TRUNCATE.
// A goroutine holds a connection of its own that LISTENs on that channel
// and on a probe channel of its own, and every probeEvery it sends a probe notification through
// the pool and waits for it to come back. PostgreSQL delivers notifications
// in commit order, so once the probe sent at t has arrived, every change
// committed before t has been heard and its account forgotten: the cache
// is trusted until t + trustFor (on the monotonic clock). While the session
// works, a change is heard a few milliseconds after its commit, the same
// window in which a request that read the account just before the commit
// still runs; if the session dies without a sign, a change may go unheard
// for up to trustFor.
//
// When the connection fails, or probeMisses probes in a row do not return
// (a half-open connection after a failover), the cache is emptied and not
// trusted until the goroutine listens again on a new connection. Behind a
// connection pooler that does not pass notifications on (PgBouncer in
// transaction mode) no probe ever returns, the cache is never trusted, and
// every load reads the database.
//
// Changes that fire no trigger go unheard: ALTER TABLE ... DISABLE TRIGGER,
// and session_replication_role = replica (pg_restore --disable-triggers,
// logical replication). Restart the gateways after such maintenance.
const (
	accountsChannel = "acmegw_accounts"
	probeEvery      = time.Second
	trustFor        = 3 * time.Second
	probeMisses     = 3
	// watchRetryMax bounds the wait between attempts to listen again.
	watchRetryMax = 30 * time.Second
	// watchName is the application_name of the listening session, for
	// pg_stat_activity.
	watchName = "acmegw account watch"
)

// watchAccounts listens for account changes until ctx ends (see above).
func (s *Store) watchAccounts(ctx context.Context) {
	defer close(s.watchDone)
	wait := probeEvery
	for {
		started := time.Now()
		err := s.listenAccounts(ctx)
		s.cached.Distrust()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > watchRetryMax {
			wait = probeEvery // it had worked for a while
		}
		s.opts.Logger.Warn("postgres: account changes not heard; accounts are read from the database until they are",
			"namespace", s.ns, "retry_in", wait, "error", err)
		if sleep(ctx, wait) != nil {
			return
		}
		wait = min(2*wait, watchRetryMax)
	}
}

// listenAccounts listens and probes on a connection of its own until the
// connection fails or ctx ends.
func (s *Store) listenAccounts(ctx context.Context) error {
	probeChannel := "acmegw_probe_" + strings.ToLower(rand.Text())
	cfg := s.pool.Config().ConnConfig
	cfg.RuntimeParams["application_name"] = watchName
	connectCtx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	listenCtx, cancel := s.withTimeout(ctx)
	_, err = conn.Exec(listenCtx, "LISTEN "+pgx.Identifier{accountsChannel}.Sanitize()+"; LISTEN "+pgx.Identifier{probeChannel}.Sanitize())
	cancel()
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// What was read before this point may have missed changes.
	s.cached.Reset()
	for missed := 0; ; {
		probe := rand.Text()
		sent := time.Now()
		if err := s.sendProbe(ctx, probeChannel, probe); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		// Wait a while for the probe even when sending it was slow.
		next := sent.Add(probeEvery)
		if soon := time.Now().Add(probeEvery / 4); next.Before(soon) {
			next = soon
		}
		probed := false
		for time.Now().Before(next) {
			waitCtx, cancel := context.WithDeadline(ctx, next)
			n, err := conn.WaitForNotification(waitCtx)
			cancel()
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case n != nil && n.Channel == probeChannel:
				if n.Payload == probe {
					probed = true
					s.cached.TrustUntil(sent.Add(trustFor))
				}
			case n != nil:
				s.heard(n.Payload)
			case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			default:
				return fmt.Errorf("wait: %w", err)
			}
		}
		if missed = missed + 1; probed {
			missed = 0
		} else if missed >= probeMisses {
			return fmt.Errorf("%d probes in a row did not come back", missed)
		}
	}
}

// heard forgets what a notification on accountsChannel names.
func (s *Store) heard(payload string) {
	if payload == "*" { // TRUNCATE
		s.cached.Reset()
		return
	}
	i := strings.LastIndexByte(payload, ' ')
	if i >= 0 && payload[:i] == s.ns {
		s.cached.Invalidate(payload[i+1:])
	}
}

// sendProbe sends a probe notification through the pool (or what a test
// put in its place, see probeSender).
func (s *Store) sendProbe(ctx context.Context, channel, payload string) error {
	if send := s.probeSender.Load(); send != nil {
		return (*send)(ctx, channel, payload)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}
