//go:build !windows

package boltstore

import "os"

// fsyncDir fsyncs the directory dir.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
