//go:build !linux

package caddyacmegw

// onNetworkFS reports whether dir is on a network file system; only Linux
// tells, elsewhere the operator chooses `storage caddy` for a shared one.
func onNetworkFS(string) bool { return false }
