// Package testca is a throwaway certificate authority for tests: a fresh
// self-signed P-256 root that signs what it is given and remembers the
// revocations it is told of.
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"time"
)

// CA is a throwaway root. It is safe for concurrent use.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	mu      sync.Mutex
	revoked map[string]int // serial (hex) → reason
}

// New makes a CA named cn, valid from an hour ago for a day.
func New(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, revoked: map[string]int{}}, nil
}

// Sign issues tmpl for pub and returns the chain, leaf first.
func (ca *CA) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) ([]*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, ca.Cert}, nil
}

// Revoke records that c was revoked for reason.
func (ca *CA) Revoke(c *x509.Certificate, reason int) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked[c.SerialNumber.Text(16)] = reason
}

// Revocation is the reason the certificate with serial (hex) was revoked
// for, if it was.
func (ca *CA) Revocation(serial string) (int, bool) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	r, ok := ca.revoked[serial]
	return r, ok
}

// Revocations are the recorded revocations: the reason by serial (hex).
func (ca *CA) Revocations() map[string]int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	out := make(map[string]int, len(ca.revoked))
	for k, v := range ca.revoked {
		out[k] = v
	}
	return out
}

// Revoked counts the revocations recorded.
func (ca *CA) Revoked() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return len(ca.revoked)
}
