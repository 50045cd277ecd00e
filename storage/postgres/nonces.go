package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// A nonce is nonceRandom random bytes, the big-endian Unix second it
// expires, and the first nonceMAC bytes of their HMAC-SHA256, in base64url.
const (
	nonceRandom = 16
	nonceMAC    = 16
	nonceLen    = nonceRandom + 8 + nonceMAC
)

// loadNonceKey reads the namespace's nonce key, creating it first if this
// is the namespace's first instance. Of instances racing to create it, one
// insert wins and every instance reads the winner's key.
func (s *Store) loadNonceKey(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO nonce_keys (namespace, key) VALUES ($1, $2) ON CONFLICT DO NOTHING", s.ns, key)
	if err != nil {
		return fail(ctx, "nonce key", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT key FROM nonce_keys WHERE namespace = $1", s.ns).Scan(&s.nonceKey); err != nil {
		return fail(ctx, "nonce key", err)
	}
	return nil
}

func (s *Store) nonceMAC(body []byte) []byte {
	m := hmac.New(sha256.New, s.nonceKey)
	m.Write(body)
	return m.Sum(nil)[:nonceMAC]
}

// NewNonce implements storage.Nonces without touching the database.
func (s *Store) NewNonce(context.Context) (string, error) {
	var buf [nonceLen]byte
	if _, err := rand.Read(buf[:nonceRandom]); err != nil {
		return "", fmt.Errorf("postgres: nonce: %w", err)
	}
	expires := s.opts.Now().Add(s.opts.NonceLifetime)
	binary.BigEndian.PutUint64(buf[nonceRandom:], uint64(expires.Unix()))
	copy(buf[nonceRandom+8:], s.nonceMAC(buf[:nonceRandom+8]))
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

// RedeemNonce implements storage.Nonces. It refuses a nonce that does not
// verify or has expired without the database; any other it inserts, in a
// statement of its own or one shared with concurrent calls (see
// nonceBatcher).
func (s *Store) RedeemNonce(ctx context.Context, nonce string) error {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceLen {
		return errBadNonce
	}
	var buf [nonceLen]byte
	// Strict: a nonce has one spelling, not four (the last character's
	// unused bits).
	if _, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(nonce)); err != nil {
		return errBadNonce
	}
	if !hmac.Equal(buf[nonceRandom+8:], s.nonceMAC(buf[:nonceRandom+8])) {
		return errBadNonce
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(buf[nonceRandom:])), 0)
	if !s.opts.Now().Before(expires) {
		return errBadNonce
	}
	return s.redeem(ctx, &redemption{nonce: buf[:nonceRandom], expires: expires})
}
