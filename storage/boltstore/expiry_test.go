package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/boltstore"
)

// expiredOrders stores n pending orders, each with a pending authorization
// offering three challenges, that expired an hour before now. Writers run
// at once so that they share commits.
func expiredOrders(tb testing.TB, s *boltstore.Store, n int, now time.Time) {
	tb.Helper()
	const writers = 1000
	acct := newClient(tb, s).acct
	expired := now.Add(-time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				ident := storage.Identifier{Type: "dns", Value: strings.ToLower(randomID()[:12]) + ".example.com"}
				a := &storage.Authorization{ID: randomID(), AccountID: acct.ID, Identifier: ident, Status: storage.StatusPending, Expires: expired}
				for _, typ := range []string{"http-01", "dns-01", "tls-alpn-01"} {
					a.Challenges = append(a.Challenges, storage.Challenge{Type: typ, Token: randomID(), Status: storage.StatusPending})
				}
				o := &storage.Order{ID: randomID(), AccountID: acct.ID, Status: storage.StatusPending, Identifiers: []storage.Identifier{ident},
					AuthzIDs: []string{a.ID}, Expires: expired, CreatedAt: expired.Add(-time.Hour), UpdatedAt: expired.Add(-time.Hour)}
				if err := s.CreateOrder(context.Background(), o, []*storage.Authorization{a}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatalf("CreateOrder: %v", err)
	}
}

// deleteAllExpired deletes what expired before now in batches of 500, as
// the janitor does, and returns how many records went.
func deleteAllExpired(tb testing.TB, s *boltstore.Store, now time.Time) int {
	tb.Helper()
	const batch = 500
	total := 0
	for {
		n, err := s.DeleteExpired(context.Background(), now, batch)
		if err != nil {
			tb.Fatalf("DeleteExpired: %v", err)
		}
		total += n
		if n < batch {
			return total
		}
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// growthStep is the most by which bbolt grows a file of more than 16 MiB at
// once (its AllocSize).
const growthStep = 16 << 20

// fileSizes writes rounds of perRound expired orders to a new database,
// deleting them after each round when clean is set, and returns the file's
// size after each round.
func fileSizes(tb testing.TB, rounds, perRound int, clean bool) []int64 {
	path := filepath.Join(tb.TempDir(), "acme.db")
	s := open(tb, path)
	var sizes []int64
	for range rounds {
		now := time.Now()
		expiredOrders(tb, s, perRound, now)
		if clean {
			if n := deleteAllExpired(tb, s, now); n != 2*perRound {
				tb.Fatalf("deleted %d records, want %d", n, 2*perRound)
			}
		}
		sizes = append(sizes, fileSize(tb, path))
	}
	return sizes
}

// TestDeleteExpired_FileStopsGrowing writes 50,000 expired orders with
// their authorizations, deletes them, and does it again: the second round
// reuses the pages the first freed, so the file grows by less than one of
// bbolt's growth steps.
func TestDeleteExpired_FileStopsGrowing(t *testing.T) {
	if testing.Short() || raceDetector {
		// A size check that takes a minute, and several under the race
		// detector; the conformance suite covers DeleteExpired's races.
		t.Skip("writes 100,000 orders")
	}
	sizes := fileSizes(t, 2, 50_000, true)
	t.Logf("file after 50,000 expired orders: %d bytes; after 100,000: %d bytes", sizes[0], sizes[1])
	// bbolt grows the file to its highest page plus one growth step, and
	// the highest page may first move up by a few pages (the freelist's).
	// So the bound allows 1 MiB (256 pages of 4 KiB) of slack beyond one
	// growth step: little beside what a round of 50,000 orders adds when
	// they are kept, 80 MiB for the first and about 50-65 MiB for each after
	// (BenchmarkFileSize).
	if limit := sizes[0] + growthStep + 1<<20; sizes[1] > limit {
		t.Fatalf("the file grew from %d to %d bytes, by more than one growth step (%d) and 1 MiB", sizes[0], sizes[1], growthStep)
	}
}

// BenchmarkFileSize reports the file's size after each of four rounds of
// 50,000 expired orders, with the expired deleted after each round and
// without. Run it once: go test -run '^$' -bench FileSize -benchtime 1x.
func BenchmarkFileSize(b *testing.B) {
	for _, clean := range []bool{true, false} {
		name := "deleted"
		if !clean {
			name = "kept"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for i, size := range fileSizes(b, 4, 50_000, clean) {
					b.ReportMetric(float64(size)/(1<<20), []string{"MiB@50k", "MiB@100k", "MiB@150k", "MiB@200k"}[i])
				}
			}
		})
	}
}

// TestOpen_IndexesExpiriesOfFormat1 opens a file written before the expiry
// indexes existed: Open builds them, so the orders in it are deleted too.
func TestOpen_IndexesExpiriesOfFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acme.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expiredOrders(t, s, 3, now)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"order_expiry", "authz_expiry"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("1"))
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if n := deleteAllExpired(t, open(t, path), now); n != 6 {
		t.Fatalf("deleted %d records of a format 1 file, want 6", n)
	}
}
