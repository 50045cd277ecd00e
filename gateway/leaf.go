package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"time"
)

// LeafTemplate is the certificate an issuer that signs itself (the local
// CA) makes for req, valid from notBefore to notAfter: a fresh random
// serial, the order's names and addresses, the e-mail address when
// req.Email is set, the CSR's common name or else the first name when it
// fits, and the key and extended key usages of req, by default those of a
// TLS server and client.
func LeafTemplate(req *IssueRequest, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cn := req.CSR.Subject.CommonName
	if cn == "" && len(req.Names) > 0 && len(req.Names[0]) <= 64 {
		cn = req.Names[0]
	}
	ku, eku := keyUsage(req.CSR.PublicKey), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if req.KeyUsage != 0 {
		ku = req.KeyUsage
	}
	if len(req.ExtKeyUsage) > 0 {
		eku = req.ExtKeyUsage
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              req.Names,
		IPAddresses:           netIPs(req.IPAddresses),
		EmailAddresses:        emailSAN(req.Email),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
	}, nil
}

func netIPs(addrs []netip.Addr) []net.IP {
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.AsSlice()
	}
	return out
}

func emailSAN(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{addr}
}

func keyUsage(pub crypto.PublicKey) x509.KeyUsage {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return x509.KeyUsageDigitalSignature
	}
	return x509.KeyUsageDigitalSignature
}

// randomSerial returns a positive serial of 127 random bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}
