package boltstore

import "syscall"

// dontNeed unmaps the n bytes of the process's memory at addr, a mapping of
// the database file: the page cache keeps the pages, and the next read of one
// maps it again.
func dontNeed(addr uintptr, n int64) {
	// An error leaves the pages mapped, which costs memory, not correctness.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(n), syscall.MADV_DONTNEED)
}
