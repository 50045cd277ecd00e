package boltstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncDir fsyncs a directory, so that the entries made in it survive a
// crash of the machine (see fsyncDir). A variable, for tests.
var syncDir = fsyncDir

// missing lists path and those of its parent directories that do not
// exist, deepest last.
func missing(path string) ([]string, error) {
	var out []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("boltstore: %w", err)
		}
		out = append([]string{p}, out...)
		if filepath.Dir(p) == p {
			break
		}
	}
	return out, nil
}

// syncCreated makes durable the entries of the paths Open created: each
// in its parent directory. bbolt fsyncs the file's contents but not its
// name, and without this a crash of the machine soon after the first start
// could lose the whole file.
func syncCreated(paths []string) error {
	for _, p := range paths {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("boltstore: sync directory of %s: %w", p, err)
		}
	}
	return nil
}
