//go:build !linux

package boltstore

// dontNeed is a no-op where resident memory has not been measured.
func dontNeed(uintptr, int64) {}
