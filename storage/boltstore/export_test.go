package boltstore

import "time"

// OpenTimeout is Open with a lock timeout of the test's choosing.
func OpenTimeout(path string, timeout time.Duration) (*Store, error) {
	return open(path, timeout)
}

// SetBatchDelay changes how long writes wait for others to share a commit.
func SetBatchDelay(s *Store, d time.Duration) {
	s.db.MaxBatchDelay = d
}

// Release unmaps the file's pages now, as the store does every
// releaseEvery calls.
func Release(s *Store) {
	s.release()
}

// CachedAccounts is how many accounts the store holds in memory.
func CachedAccounts(s *Store) int {
	return s.cached.Len()
}
