package gateway

import (
	"crypto/rand"
	"encoding/base64"
)

// NewID returns a random, URL-safe identifier of 128 bits that does not
// begin with "-", so that an officer can pass it on a command line as an
// argument of its own (a leading "-" reads as a flag).
func NewID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// newToken returns a challenge token of 256 bits (RFC 8555 §8.1 wants at least 128).
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
