// Package boltstore is a storage backend in one bbolt database file: the
// gateway's default when it runs alone and keeps its state on the local file
// system. One process at a time may open the file.
//
// # Durable and fast
//
// Every write is on disk (fsync'd) when its call returns, and so are the
// names of the file and directories that Open creates (bbolt syncs only
// the file's contents). Writes go through
// bbolt's Batch: concurrent calls share one transaction and one commit, so
// the gateway's throughput is not bound by one fsync per write. A write waits
// up to batchDelay for others to join it. Reads run in their own read-only
// transactions and do not wait for writes.
//
// # Memory stays flat as the file grows
//
// bbolt reads through mmap, and the pages of the file that the process reads
// count in its resident memory; the kernel even maps up to 64 KiB around
// each page read (fault-around). Two things keep that from growing with the
// file. Records are JSON values keyed by a per-bucket sequence number (8
// bytes, big-endian), so the records that an issuance creates, reads and
// updates lie together at the end of their trees whatever the size of the
// file, and only small indexes are read at random. And every releaseEvery
// calls, the store unmaps the whole file (on Linux, madvise MADV_DONTNEED;
// the page cache keeps the pages), so what stays mapped is what was read
// since. BenchmarkMemoryGrowth measures it.
//
// The buckets, with the indexes from natural keys (ids, serials,
// thumbprints) to sequence numbers:
//
//	accounts             seq -> account (JSON)
//	account_ids          id -> seq
//	account_thumbprints  key thumbprint -> seq
//	account_list         time(created) id -> seq
//	orders               seq -> order
//	order_ids            id -> seq
//	account_orders       part(account id) time(created) order id -> (empty)
//	authzs               seq -> authorization
//	authz_ids            id -> seq
//	valid_authzs         part(account id) part(type) part(value) wildcard time(expires) id -> seq
//	certificates         seq -> certificate without its chain
//	certificate_chains   seq -> chain PEM, as is
//	certificate_serials  serial -> seq
//	certificate_list     time(issued) serial -> seq
//	registrations        seq -> registration
//	registration_keys    key id -> seq
//	audit                seq -> audit entry
//	audit_ids            id -> seq
//	audit_list           time(time) id -> seq
//	order_expiry         time(expires) seq -> (empty), of orders not valid
//	authz_expiry         time(expires) seq -> (empty), of authorizations not valid
//	renewal_rules        seq -> renewal rule
//	renewal_rule_ids     id -> seq
//	renewal_rule_scopes  digest(scope) id -> seq
//	replacement_claims   certificate serial -> claiming order id, as is
//	meta                 "format" -> "2"
//
// time(t) is 12 bytes that sort as times do (see timeKey), part(s) is s
// with its length in front (see part), and digest(scope) is the scope's
// 16-byte storage.RenewalScope.Digest. A certificate's chain, its largest
// part, is kept apart as raw bytes: a quarter smaller than JSON's base64,
// and officers' listings filter certificates without reading chains.
//
// # Accounts in memory
//
// Nearly every request loads its account by id, so GetAccount keeps the
// accounts it read (at most cachedAccounts) and UpdateAccount forgets the one
// it changed. Nothing else writes the file, so the copies are always current.
//
// # Atomic
//
// Each call is one transaction, so writes that belong together (an order and
// its authorizations, a certificate and its order, an account and its
// registration) are all stored or none, and the indexes always agree with the
// records. Compare-and-swap compares Version inside the transaction; bbolt
// has one writer at a time, so two racing swaps cannot both win.
//
// # Errors
//
// A closed database or a failed commit wraps storage.ErrUnavailable. A
// cancelled ctx stops a call before it starts; once a write has joined a
// batch it runs to the end. Registration key ids must be storage.ValidKeyID.
//
// # Bounded
//
// DeleteExpired deletes orders and authorizations that expired unfinished
// (not valid), in transactions of a bounded number of records, finding
// them through the expiry indexes rather than a scan. bbolt reuses the
// pages they free, so under a steady load of orders that expire the file
// stops growing (TestDeleteExpired_FileStopsGrowing); it never shrinks on
// its own (`bbolt compact` rewrites a file offline). Accounts,
// certificates, audit entries, renewal rules, replacement claims and valid
// orders and authorizations are kept.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/acctcache"
)

const (
	// lockTimeout is how long Open waits for another process to release
	// the file before it gives up.
	lockTimeout = 3 * time.Second
	// batchDelay is how long a write waits for others to share its commit.
	// Alone, BenchmarkIssuanceParallel (the store waiting on nothing but
	// itself) peaks at 1-2 ms; in a whole gateway, where the CPU goes to
	// signatures and a commit's fsync competes with them, 3-5 ms made
	// fewer commits and more certificates a second than 1-2 ms
	// (cmd/acmeload, 50 clients). bbolt's default, 10 ms, costs a lone
	// client too much latency for each write.
	batchDelay = 3 * time.Millisecond
	// appendFill is how full bbolt packs a page that it splits, for the
	// buckets written mostly at their end: their left halves are never
	// written again, so bbolt's default of half full would only waste space.
	appendFill = 0.9
	// releaseEvery is how many calls may map pages of the file into the
	// process's memory before release unmaps them all. Every random read
	// of a page maps up to 64 KiB around it (the kernel's fault-around),
	// so resident memory would grow with the file; unmapping costs about a
	// millisecond per 30 MB mapped (see BenchmarkMemoryGrowth).
	releaseEvery = 256
	// cachedAccounts is how many accounts GetAccount keeps decoded in
	// memory: a few MB at most, and every client that is active at once.
	cachedAccounts = 10000
	// format is the layout described in the package doc; Open upgrades
	// files of format 1.
	format = "2"
)

var (
	metaBucket         = []byte("meta")
	formatKey          = []byte("format")
	accountThumbprints = []byte("account_thumbprints")
	accountList        = []byte("account_list")
	accountOrders      = []byte("account_orders")
	validAuthzs        = []byte("valid_authzs")
	certificateChains  = []byte("certificate_chains")
	certificateList    = []byte("certificate_list")
	auditList          = []byte("audit_list")
	renewalRuleScopes  = []byte("renewal_rule_scopes")
	replacementClaims  = []byte("replacement_claims")
)

// buckets lists every bucket, so that Open creates them and transactions
// can take them for granted.
var buckets = [][]byte{
	metaBucket,
	accounts.records, accounts.keys, accountThumbprints, accountList,
	orders.records, orders.keys, accountOrders, orderExpiry,
	authzs.records, authzs.keys, validAuthzs, authzExpiry,
	certificates.records, certificates.keys, certificateChains, certificateList,
	registrations.records, registrations.keys,
	audit.records, audit.keys, auditList,
	renewalRules.records, renewalRules.keys, renewalRuleScopes,
	replacementClaims,
}

// Store is a storage.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
	// calls counts calls, so that every releaseEvery-th releases pages.
	calls atomic.Int64
	// releasing is set while a release runs.
	releasing atomic.Bool
	// cached holds accounts read by id (see GetAccount).
	cached *acctcache.Cache
}

// Open opens the database at path, creating it (mode 0600) and its
// directory (0700) when missing. Only one process may have it open: another
// gets an error after a few seconds.
func Open(path string) (*Store, error) {
	return open(path, lockTimeout)
}

func open(path string, timeout time.Duration) (*Store, error) {
	created, err := missing(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		// The map freelist allocates in constant time where the default
		// array scans the list, which DeleteExpired lengthens. Neither
		// throughput nor memory differed in the benchmarks, so this only
		// guards against a list that grows long. NoFreelistSync, which saves writing the list at
		// each commit, did not help measurably either, and would make every
		// Open read the whole file to rebuild it.
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is in use by another process: %w", path, storage.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	if err := db.Update(setUp); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	if err := syncCreated(created); err != nil {
		_ = db.Close()
		return nil, err
	}
	cached := acctcache.New(cachedAccounts, nil)
	cached.TrustUntil(acctcache.Forever)
	return &Store{db: db, cached: cached}, nil
}

// setUp creates the buckets of a new file and checks the format of an old one.
func setUp(tx *bolt.Tx) error {
	for _, name := range buckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(metaBucket)
	switch f := meta.Get(formatKey); {
	case f == nil:
		return meta.Put(formatKey, []byte(format))
	case string(f) == "1":
		// Format 1 had no expiry indexes.
		if err := indexExpiries(tx); err != nil {
			return err
		}
		return meta.Put(formatKey, []byte(format))
	case string(f) != format:
		return fmt.Errorf("format %q is not %q: written by another version of the gateway", f, format)
	}
	return nil
}

// Close closes the database; calls after it are ErrUnavailable.
func (s *Store) Close() error {
	s.cached.Distrust()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// read runs fn in a read-only transaction.
func (s *Store) read(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, s.db.View, fn)
}

// write runs fn in a write transaction that it may share with concurrent
// calls. fn may run more than once (bbolt retries a batch without the call
// that failed, and that call alone), so it must depend on nothing but tx and
// must not change what the caller passed in: callers set Version and the
// like once write has returned nil.
func (s *Store) write(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, s.db.Batch, fn)
}

// run runs fn in a transaction of begin's. fn's own error stands as it is;
// a transaction that could not begin (the database is closed) or commit (the
// disk failed) is ErrUnavailable.
func (s *Store) run(ctx context.Context, begin func(func(*bolt.Tx) error) error, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	defer s.count()
	var fnErr error
	err := begin(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fmt.Errorf("boltstore: %w: %w", storage.ErrUnavailable, err)
	}
	return nil
}

// count counts a call and releases pages every releaseEvery calls.
func (s *Store) count() {
	if s.calls.Add(1)%releaseEvery == 0 && s.releasing.CompareAndSwap(false, true) {
		// Off the caller's path: the unmapping takes longer the larger the
		// file, and the call that happens to count to releaseEvery is a
		// client's request.
		go func() {
			defer s.releasing.Store(false)
			s.release()
		}()
	}
}

// release unmaps the database file's pages from the process's memory (see
// releaseEvery); reads map the pages they need again.
func (s *Store) release() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		// The read transaction keeps bbolt from remapping the file meanwhile.
		dontNeed(s.db.Info().Data, tx.Size())
		return nil
	})
}

func notFound(kind, key string) error {
	return fmt.Errorf("boltstore: %s %q: %w", kind, key, storage.ErrNotFound)
}

func taken(kind, key string) error {
	return fmt.Errorf("boltstore: %s %q exists: %w", kind, key, storage.ErrConflict)
}

// Interface guard.
var _ storage.Store = (*Store)(nil)
