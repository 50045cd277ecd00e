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

// RecordDirSyncs makes the store record the directories it fsyncs, instead
// of syncing them, until the test ends.
func RecordDirSyncs(t interface{ Cleanup(func()) }) *[]string {
	var synced []string
	old := syncDir
	syncDir = func(dir string) error {
		synced = append(synced, dir)
		return nil
	}
	t.Cleanup(func() { syncDir = old })
	return &synced
}

// FsyncDir is the platform's directory sync that Open uses.
var FsyncDir = fsyncDir
