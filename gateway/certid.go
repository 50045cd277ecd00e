package gateway

import (
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strings"
)

// maxCertIDLen bounds a certID: an AKI key identifier (20 bytes for SHA-1,
// at most 64 in practice) and a serial (at most 20 bytes, RFC 5280 §4.1.2.2),
// each base64url, with room to spare.
const maxCertIDLen = 200

// certID is the unique identifier of a certificate in RFC 9773 §4.1: the
// keyIdentifier of its Authority Key Identifier and its serial number.
type certID struct {
	aki []byte
	// serial is the serial as storage keeps it: lower-case hex.
	serial string
}

// parseCertID parses base64url(AKI keyIdentifier) "." base64url(serial DER
// bytes), both without padding. Anything else is a malformed problem.
func parseCertID(s string) (certID, error) {
	if len(s) > maxCertIDLen {
		return certID{}, malformed("certID is too long")
	}
	if strings.Contains(s, "=") {
		return certID{}, malformed("certID must be base64url without padding (RFC 9773 §4.1)")
	}
	if strings.IndexFunc(s, notCertIDChar) >= 0 {
		return certID{}, malformed("certID holds characters other than base64url and one \".\"")
	}
	akiPart, serialPart, ok := strings.Cut(s, ".")
	if !ok || akiPart == "" || serialPart == "" {
		return certID{}, malformed("certID must be base64url(keyIdentifier) \".\" base64url(serial)")
	}
	// Strict: one certID has one spelling (no stray bits in the last character).
	enc := base64.RawURLEncoding.Strict()
	aki, err := enc.DecodeString(akiPart)
	if err != nil {
		return certID{}, malformed("certID keyIdentifier is not base64url")
	}
	der, err := enc.DecodeString(serialPart)
	if err != nil {
		return certID{}, malformed("certID serial is not base64url")
	}
	// Neither is empty: each part has a character, and one character
	// alone is not base64url.
	switch {
	case der[0]&0x80 != 0:
		return certID{}, malformed("certID serial is negative")
	case len(der) > 1 && der[0] == 0 && der[1]&0x80 == 0:
		return certID{}, malformed("certID serial is not DER: it has a redundant leading zero")
	}
	return certID{aki: aki, serial: new(big.Int).SetBytes(der).Text(16)}, nil
}

// notCertIDChar reports whether c is outside base64url and the dot. The
// decoder would skip line breaks; a certID has none.
func notCertIDChar(c rune) bool {
	return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')
}

// certIDOf is the certID of a certificate, as clients compute it.
func certIDOf(leaf *x509.Certificate) string {
	der := leaf.SerialNumber.Bytes()
	if len(der) == 0 || der[0]&0x80 != 0 {
		der = append([]byte{0}, der...) // DER INTEGER of a positive serial
	}
	return base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(der)
}
