package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// signCompact signs payload with go-jose and returns the signing input and
// the raw signature, so that verifySignature is checked against another
// implementation.
func signCompact(t *testing.T, alg jose.SignatureAlgorithm, key crypto.Signer, payload string) (input, sig []byte) {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(compact, '.')
	sig, err = decodeBase64URL(compact[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return []byte(compact[:i]), sig
}

func TestVerifySignature_AgreesWithGoJose(t *testing.T) {
	ec := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, p384, p521 := ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521())
	keys := []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{
		{jose.ES256, p256}, {jose.ES384, p384}, {jose.ES512, p521},
		{jose.RS256, rsaKey}, {jose.PS256, rsaKey}, {jose.EdDSA, edKey},
	}
	for _, k := range keys {
		input, sig := signCompact(t, k.alg, k.key, `{"status":"valid"}`)
		t.Run(string(k.alg)+" verifies", func(t *testing.T) {
			if err := verifySignature(k.key.Public(), string(k.alg), input, sig); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(string(k.alg)+" refuses a changed input", func(t *testing.T) {
			changed := append([]byte(nil), input...)
			changed[len(changed)-1] ^= 1
			if verifySignature(k.key.Public(), string(k.alg), changed, sig) == nil {
				t.Fatal("verified")
			}
		})
		t.Run(string(k.alg)+" refuses a cut signature", func(t *testing.T) {
			if verifySignature(k.key.Public(), string(k.alg), input, sig[:len(sig)-1]) == nil {
				t.Fatal("verified")
			}
		})
		for _, other := range keys {
			if other.alg == k.alg {
				continue
			}
			t.Run(fmt.Sprintf("%s signature under alg %s refused", k.alg, other.alg), func(t *testing.T) {
				if verifySignature(k.key.Public(), string(other.alg), input, sig) == nil {
					t.Fatal("verified under the wrong algorithm")
				}
			})
		}
	}
	t.Run("ES256 signature checked against a P-384 key", func(t *testing.T) {
		input, sig := signCompact(t, jose.ES256, p256, "{}")
		if verifySignature(p384.Public(), "ES256", input, sig) == nil {
			t.Fatal("verified")
		}
	})
}

func TestKeyCache_StaysBoundedAndParsesOnce(t *testing.T) {
	var c keyCache
	jwkOf := func() []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := (&jose.JSONWebKey{Key: k.Public()}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := jwkOf()
	a, err := c.publicKey(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.publicKey(first)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the same JWK was parsed twice")
	}
	for range maxCachedKeys + 10 {
		if _, err := c.publicKey(jwkOf()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.keys); n > maxCachedKeys {
		t.Fatalf("%d keys cached, bound is %d", n, maxCachedKeys)
	}
	if _, err := c.publicKey([]byte(`{"kty":"EC"}`)); err == nil {
		t.Fatal("an invalid JWK parsed")
	}
}
