package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// The tests below make batches deterministic instead of hoping for a
// race: holdNonces locks nonces_used, so that a store's statement waits
// in the database while the redemptions after it queue, and the next
// statement carries exactly those.

// holdNonces locks nonces_used against inserts until release (or the end
// of t).
func holdNonces(t *testing.T, pool *pgxpool.Pool) (release func()) {
	t.Helper()
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE nonces_used IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(context.Background()) }) }
	t.Cleanup(release)
	return release
}

// heldStore returns a store on a database of its own, a pool that
// reaches the database directly, and the release of holdNonces's lock,
// which it holds.
func heldStore(t *testing.T) (s *Store, direct *pgxpool.Pool, release func()) {
	dsn := pgtest.Start(t)
	s = newStore(t, newPool(t, dsn), Options{Namespace: "gw", Timeout: time.Minute})
	direct = newPool(t, dsn)
	return s, direct, holdNonces(t, direct)
}

// waitFor polls until cond holds; the deadline only ends a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// redeemAsync starts s.RedeemNonce and returns where its error arrives.
func redeemAsync(ctx context.Context, s *Store, nonce string) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- s.RedeemNonce(ctx, nonce) }()
	return errc
}

// redeemWaiting starts redeeming nonce at s, where it leads, and returns
// once its statement waits for holdNonces's lock, the database's
// waiters-th session to wait for a lock. direct must not go through a
// proxy.
func redeemWaiting(t *testing.T, ctx context.Context, s *Store, direct *pgxpool.Pool, waiters int, nonce string) <-chan error {
	t.Helper()
	errc := redeemAsync(ctx, s, nonce)
	waitFor(t, fmt.Sprintf("%d statements wait for the lock", waiters), func() bool {
		var n int
		err := direct.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == waiters
	})
	return errc
}

// redeemQueued starts redeeming each nonce at s, whose statement waits
// (see redeemWaiting), and returns once all of them are queued for the
// next statement.
func redeemQueued(t *testing.T, ctx context.Context, s *Store, nonces ...string) []<-chan error {
	t.Helper()
	queued := queueLen(s) + len(nonces)
	errs := make([]<-chan error, len(nonces))
	for i, n := range nonces {
		errs[i] = redeemAsync(ctx, s, n)
	}
	waitFor(t, fmt.Sprintf("%d redemptions are queued", queued), func() bool { return queueLen(s) == queued })
	return errs
}

func queueLen(s *Store) int {
	s.nonces.mu.Lock()
	defer s.nonces.mu.Unlock()
	return len(s.nonces.queue)
}

func statements(stores ...*Store) (n int64) {
	for _, s := range stores {
		n += s.nonces.statements.Load()
	}
	return n
}

func mint(t *testing.T, s *Store) string {
	t.Helper()
	n, err := s.NewNonce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Sixty-four redemptions at once at two instances: fresh nonces, nonces
// presented by two to four callers, and nonces used before. Racing, and
// then queued behind a held statement so that batching is certain.
func TestNonces_BatchesAcceptEachNonceOnceAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	opts := Options{Namespace: "gw", Timeout: time.Minute}
	stores := []*Store{newStore(t, newPool(t, dsn), opts), newStore(t, newPool(t, dsn), opts)}
	direct := newPool(t, dsn)
	for _, queued := range []bool{false, true} {
		t.Run(map[bool]string{false: "racing", true: "queued"}[queued], func(t *testing.T) {
			ctx := t.Context()
			winners := map[string]int{} // the number that must get nil
			var presented []string
			for i := range 34 {
				n := mint(t, stores[0])
				winners[n] = 1
				presented = append(presented, n)
				if i < 12 { // presented 2, 3 or 4 times
					for range 1 + i%3 {
						presented = append(presented, n)
					}
				}
			}
			for i := range 4 {
				n := mint(t, stores[0])
				if err := stores[1].RedeemNonce(ctx, n); err != nil {
					t.Fatal(err)
				}
				winners[n] = 0
				for range 1 + i%2 {
					presented = append(presented, n)
				}
			}
			rand.Shuffle(len(presented), func(i, j int) { presented[i], presented[j] = presented[j], presented[i] })
			if len(presented) != 64 {
				t.Fatalf("%d redemptions, want 64", len(presented))
			}
			before := statements(stores...)

			errs := make([]<-chan error, len(presented))
			if queued {
				// presented[0] at one store and presented[1] at the other go
				// first and wait in the database; the rest queue behind them.
				release := holdNonces(t, direct)
				errs[0] = redeemWaiting(t, ctx, stores[0], direct, 1, presented[0])
				errs[1] = redeemWaiting(t, ctx, stores[1], direct, 2, presented[1])
				var rest [2][]string
				for i, n := range presented[2:] {
					rest[i%2] = append(rest[i%2], n)
				}
				queuedErrs := [2][]<-chan error{redeemQueued(t, ctx, stores[0], rest[0]...), redeemQueued(t, ctx, stores[1], rest[1]...)}
				for i := range presented[2:] {
					errs[2+i] = queuedErrs[i%2][i/2]
				}
				release()
			} else {
				for i, n := range presented {
					errs[i] = redeemAsync(ctx, stores[i%2], n)
				}
			}

			won := map[string]int{}
			for i, errc := range errs {
				switch err := <-errc; {
				case err == nil:
					won[presented[i]]++
				case !errors.Is(err, storage.ErrNotFound):
					t.Errorf("redeeming %q: %v, want nil or ErrNotFound", presented[i], err)
				}
			}
			for n, want := range winners {
				if won[n] != want {
					t.Errorf("nonce %q accepted %d times, want %d", n, won[n], want)
				}
			}
			stmts := statements(stores...) - before
			t.Logf("%d redemptions in %d statements", len(presented), stmts)
			// Queued: at each store, the one that went first and then the rest.
			if queued && stmts != 4 {
				t.Errorf("%d statements, want 4", stmts)
			}
		})
	}
}

func TestNonces_SameNonceTwiceInOneBatchHasOneWinner(t *testing.T) {
	s, direct, release := heldStore(t)
	ctx := t.Context()
	first := redeemWaiting(t, ctx, s, direct, 1, mint(t, s))
	n := mint(t, s)
	before := statements(s)
	errs := redeemQueued(t, ctx, s, n, n)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	e0, e1 := <-errs[0], <-errs[1]
	if (e0 == nil) == (e1 == nil) || !errors.Is(errors.Join(e0, e1), storage.ErrNotFound) {
		t.Errorf("one nonce twice in a batch: %v and %v, want nil and ErrNotFound", e0, e1)
	}
	if got := statements(s) - before; got != 1 {
		t.Errorf("%d statements for the batch, want 1", got)
	}
}

// A caller that gives up returns at once; the batch it was queued for
// runs without it, for the others.
func TestNonces_CallerLeavingDoesNotFailItsBatch(t *testing.T) {
	s, direct, release := heldStore(t)
	leaderCtx, leave := context.WithCancel(t.Context())
	followerCtx, leaveToo := context.WithCancel(t.Context())
	leader := redeemWaiting(t, leaderCtx, s, direct, 1, mint(t, s))
	follow, stay := mint(t, s), mint(t, s)
	follower := redeemQueued(t, followerCtx, s, follow)[0]
	stayer := redeemQueued(t, t.Context(), s, stay)[0]
	leaveToo()
	leave()
	// The lock is still held: they did not wait for the database.
	for name, errc := range map[string]<-chan error{"leading": leader, "queued": follower} {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("caller %s whose ctx ended: %v, want context.Canceled", name, err)
		}
	}
	release()
	if err := <-stayer; err != nil {
		t.Errorf("the caller that stayed: %v", err)
	}
	if err := s.RedeemNonce(t.Context(), follow); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("replay of the nonce whose queued caller left: %v, want ErrNotFound (its batch ran)", err)
	}
}

// When the database goes away, the statement in flight and the callers
// queued behind it fail with ErrUnavailable; service resumes with it.
func TestNonces_OutageFailsWaitingRedeemsAndTheyResume(t *testing.T) {
	dsn := pgtest.Start(t)
	u, _ := url.Parse(dsn)
	p := startProxy(t, u.Host)
	s := newStore(t, newPool(t, via(t, dsn, p.addr)), Options{Namespace: "gw", Timeout: time.Minute})
	direct := newPool(t, dsn) // not through the proxy
	ctx := t.Context()

	release := holdNonces(t, direct)
	errs := []<-chan error{redeemWaiting(t, ctx, s, direct, 1, mint(t, s))}
	var queued []string
	for range 8 {
		queued = append(queued, mint(t, s))
	}
	errs = append(errs, redeemQueued(t, ctx, s, queued...)...)
	p.stop()
	for i, errc := range errs {
		if err := <-errc; !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("redemption %d during the outage: %v, want ErrUnavailable", i, err)
		}
	}
	release()

	p.listen(t, p.addr) // the database returns
	waitFor(t, "a redemption succeeds again", func() bool {
		err := s.RedeemNonce(ctx, mint(t, s))
		if err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("redemption after the database returned: %v", err)
		}
		return err == nil
	})
	n := mint(t, s)
	wins := raceStores(t, 8, func(int) error { return s.RedeemNonce(ctx, n) }, storage.ErrNotFound)
	if len(wins) != 1 {
		t.Errorf("%d redeems of one nonce succeeded after the outage, want 1", len(wins))
	}
}

// Close cancels the batch in flight, fails the redemptions queued behind
// it, waits for the runner, and refuses later redemptions.
func TestNonces_CloseFailsWaitingRedeems(t *testing.T) {
	s, direct, release := heldStore(t)
	ctx := t.Context()
	// A leader that leaves hands the queue to the runner, whose statement
	// then waits for the lock.
	leaderCtx, leave := context.WithCancel(ctx)
	leader := redeemWaiting(t, leaderCtx, s, direct, 1, mint(t, s))
	errs := redeemQueued(t, ctx, s, mint(t, s), mint(t, s))
	ran := statements(s)
	leave()
	<-leader
	waitFor(t, "the runner takes the queue", func() bool { return statements(s) == ran+1 && queueLen(s) == 0 })
	errs = append(errs, redeemQueued(t, ctx, s, mint(t, s), mint(t, s))...)

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	waitFor(t, "Close returns while the statement waits", func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	})
	release()
	for i, errc := range errs {
		// errClosed, an ErrUnavailable: not their own timeouts.
		if err := <-errc; !errors.Is(err, errClosed) || !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("redemption %d waiting at Close: %v, want the store's closing (ErrUnavailable)", i, err)
		}
	}
	if err := s.RedeemNonce(ctx, mint(t, s)); !errors.Is(err, errClosed) {
		t.Errorf("RedeemNonce after Close: %v, want the store's closing (ErrUnavailable)", err)
	}
}

// BenchmarkRedeemNonceParallel mints and redeems nonces from one goroutine
// and from many at once, as concurrent ACME requests do.
func BenchmarkRedeemNonceParallel(b *testing.B) {
	s := newStore(b, newPool(b, pgtest.Start(b)), Options{Namespace: "gw"})
	redeem := func(ctx context.Context) error {
		n, err := s.NewNonce(ctx)
		if err != nil {
			return err
		}
		return s.RedeemNonce(ctx, n)
	}
	perOp := func(b *testing.B, before int64) {
		b.ReportMetric(float64(statements(s)-before)/float64(b.N), "statements/op")
	}
	b.Run("goroutines=1", func(b *testing.B) {
		before := statements(s)
		for b.Loop() {
			if err := redeem(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		perOp(b, before)
	})
	for _, p := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			before := statements(s)
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := redeem(b.Context()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			perOp(b, before)
		})
	}
}
