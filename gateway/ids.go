package gateway

import (
	"crypto/rand"
	"encoding/base64"
)

// NewID returns a random, URL-safe identifier of 128 bits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newToken returns a challenge token of 256 bits (RFC 8555 §8.1 wants at least 128).
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
