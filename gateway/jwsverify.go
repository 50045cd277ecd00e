package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA384.New, crypto.SHA512.New
	"errors"
	"math/big"
	"sync"
)

// Requests that name their account by kid are most of the traffic, and the
// account's key is already parsed and checked; verifying their signature
// here, against the cached key, spares a second parse of the whole body and
// of the key by go-jose on every request. The checks are those of go-jose's
// verifiers (RFC 7518 §3): the algorithm must fit the key's type and curve,
// and an ECDSA signature is exactly r||s at the curve's size.

var errBadSignature = errors.New("JWS signature does not verify")

// verifySignature checks sig, made with alg, over signingInput (the
// protected header and payload, base64url, joined by ".") against pub.
func verifySignature(pub crypto.PublicKey, alg string, signingInput, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return verifyECDSA(k, alg, signingInput, sig)
	case *rsa.PublicKey:
		h := crypto.SHA256.New()
		h.Write(signingInput)
		digest := h.Sum(nil)
		switch alg {
		case "RS256":
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig)
		case "PS256":
			return rsa.VerifyPSS(k, crypto.SHA256, digest, sig, nil)
		}
	case ed25519.PublicKey:
		if alg == "EdDSA" && ed25519.Verify(k, signingInput, sig) {
			return nil
		}
	}
	return errBadSignature
}

func verifyECDSA(k *ecdsa.PublicKey, alg string, signingInput, sig []byte) error {
	var (
		curve elliptic.Curve
		hash  crypto.Hash
	)
	switch alg {
	case "ES256":
		curve, hash = elliptic.P256(), crypto.SHA256
	case "ES384":
		curve, hash = elliptic.P384(), crypto.SHA384
	case "ES512":
		curve, hash = elliptic.P521(), crypto.SHA512
	default:
		return errBadSignature
	}
	size := (curve.Params().BitSize + 7) / 8
	if k.Curve != curve || len(sig) != 2*size {
		return errBadSignature
	}
	h := hash.New()
	h.Write(signingInput)
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(k, h.Sum(nil), r, s) {
		return errBadSignature
	}
	return nil
}

// maxCachedKeys bounds keyCache: past it, an arbitrary entry makes room, so
// memory stays flat however many accounts there are, and a busy account's
// key is parsed again at worst once in a while.
const maxCachedKeys = 4096

// keyCache holds parsed account public keys by their stored JWK. The JWK is
// the key: a key rollover stores a new JWK, which is a new entry, so an
// entry can never be stale. Safe for concurrent use.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]crypto.PublicKey
}

// publicKey returns the public key of the stored JWK, parsing it on a miss.
func (c *keyCache) publicKey(jwk []byte) (crypto.PublicKey, error) {
	c.mu.Lock()
	k, ok := c.keys[string(jwk)]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	parsed, err := parseJWK(jwk)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[string]crypto.PublicKey)
	}
	if len(c.keys) >= maxCachedKeys {
		for old := range c.keys {
			delete(c.keys, old)
			break
		}
	}
	c.keys[string(jwk)] = parsed.Key
	return parsed.Key, nil
}
