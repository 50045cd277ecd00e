package gateway

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"net/netip"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// checkCSR holds a finalize request to RFC 8555 §7.4: a valid signature, an
// accepted key that is not the account's, and exactly the order's names;
// and to what the gateway vouches for: a subject of at most a common name,
// SANs of DNS names and IP addresses, and only the extensions of a TLS
// leaf (checkCSRContent), whatever the issuer would make of the rest.
func checkCSR(csr *x509.CertificateRequest, o *storage.Order, acct *storage.Account) error {
	if err := csr.CheckSignature(); err != nil {
		return badCSR("CSR signature is invalid")
	}
	if err := checkCSRKey(csr.PublicKey); err != nil {
		return err
	}
	if tp, err := thumbprint(&jose.JSONWebKey{Key: csr.PublicKey}); err == nil && tp == acct.KeyThumbprint {
		return badCSR("CSR key must not be the account key")
	}
	if err := checkCSRContent(csr); err != nil {
		return err
	}
	wantNames, wantIPs := orderNames(o.Identifiers)
	gotNames := make([]string, 0, len(csr.DNSNames)+1)
	for _, n := range csr.DNSNames {
		gotNames = append(gotNames, asciiLower(n))
	}
	gotIPs := make([]string, 0, len(csr.IPAddresses)+1)
	for _, ip := range csr.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			gotIPs = append(gotIPs, a.Unmap().String())
		}
	}
	if cn := csr.Subject.CommonName; cn != "" {
		// The common name, when present, must repeat one of the names.
		// Lower-casing Unicode would turn U+212A KELVIN SIGN into "k": the
		// name is held to ASCII first, then folded in ASCII only.
		if !isPrintableASCII(cn) {
			return badCSR("CSR common name %q is not an ASCII (A-label) name", cn)
		}
		cn = asciiLower(cn)
		if a, err := netip.ParseAddr(cn); err == nil {
			gotIPs = append(gotIPs, a.Unmap().String())
		} else {
			gotNames = append(gotNames, cn)
		}
	}
	// Names and addresses apart: an address written as a DNS name is not
	// an IP SAN (RFC 8738).
	if !slices.Equal(sortedSet(gotNames), sortedSet(wantNames)) ||
		!slices.Equal(sortedSet(gotIPs), sortedSet(addrStrings(wantIPs))) {
		return badCSR("CSR identifiers %v %v do not equal the order's %v %v", gotNames, gotIPs, wantNames, addrStrings(wantIPs))
	}
	return nil
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// checkCSRKey accepts RSA 2048 to 4096 bits, ECDSA P-256 and P-384, and Ed25519.
func checkCSRKey(key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return badCSR("RSA key of %d bits; 2048 to 4096 accepted", n)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return badCSR("ECDSA curve %s not accepted; P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return badCSR("CSR key type %T not accepted", key)
	}
	return nil
}

var (
	oidCommonName       = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidExtSAN           = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage   = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidExtBasicConstr   = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidServerAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	generalNameKinds    = [...]string{"otherName", "rfc822Name (e-mail)", "dNSName", "x400Address", "directoryName", "ediPartyName", "URI", "iPAddress", "registeredID"}
	keyUsageCertSignCRL = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
)

// checkCSRContent refuses what no name check sees: subject attributes
// other than one common name, SANs other than DNS names and IP addresses,
// and requested extensions other than SAN, key usage without certificate
// or CRL signing, extended key usage serverAuth/clientAuth, and
// basicConstraints that is not a CA.
func checkCSRContent(csr *x509.CertificateRequest) error {
	cns := 0
	for _, atv := range csr.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			return badCSR("CSR subject may hold only a common name, not attribute %s", atv.Type)
		}
		cns++
	}
	if cns > 1 {
		return badCSR("CSR subject may hold one common name, not %d", cns)
	}
	for _, ext := range csr.Extensions {
		var err error
		switch {
		case ext.Id.Equal(oidExtSAN):
			err = checkSANKinds(ext.Value)
		case ext.Id.Equal(oidExtKeyUsage):
			err = checkKeyUsage(ext.Value)
		case ext.Id.Equal(oidExtExtKeyUsage):
			err = checkExtKeyUsage(ext.Value)
		case ext.Id.Equal(oidExtBasicConstr):
			err = checkNotCA(ext.Value)
		default:
			err = badCSR("CSR requests extension %s; only SAN, key usage, extended key usage and basic constraints are accepted", ext.Id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSANKinds accepts a SAN extension of dNSNames and iPAddresses only:
// Go's parser drops the kinds it does not know (otherName, a UPN among
// them), so the raw extension is read.
func checkSANKinds(der []byte) error {
	var names []asn1.RawValue
	if err := parseExt(der, &names, "SAN"); err != nil {
		return err
	}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific || n.Tag >= len(generalNameKinds) {
			return badCSR("CSR SAN extension is malformed")
		}
		if n.Tag != 2 && n.Tag != 7 {
			return badCSR("CSR SAN may only be DNS names and IP addresses, not %s", generalNameKinds[n.Tag])
		}
	}
	return nil
}

func checkKeyUsage(der []byte) error {
	var bits asn1.BitString
	if err := parseExt(der, &bits, "key usage"); err != nil {
		return err
	}
	var ku x509.KeyUsage
	for i := range 9 {
		if bits.At(i) != 0 {
			ku |= 1 << i
		}
	}
	if ku&keyUsageCertSignCRL != 0 {
		return badCSR("CSR key usage may not include certificate or CRL signing")
	}
	return nil
}

func checkExtKeyUsage(der []byte) error {
	var oids []asn1.ObjectIdentifier
	if err := parseExt(der, &oids, "extended key usage"); err != nil {
		return err
	}
	for _, o := range oids {
		if !o.Equal(oidServerAuth) && !o.Equal(oidClientAuth) {
			return badCSR("CSR extended key usage %s not accepted; serverAuth and clientAuth are", o)
		}
	}
	return nil
}

func checkNotCA(der []byte) error {
	var bc struct {
		CA      bool `asn1:"optional"`
		PathLen int  `asn1:"optional,default:-1"`
	}
	if err := parseExt(der, &bc, "basic constraints"); err != nil {
		return err
	}
	if bc.CA {
		return badCSR("CSR basic constraints may not ask for a CA")
	}
	return nil
}

// parseExt reads an extension's value, all of it, into v.
func parseExt(der []byte, v any, name string) error {
	if rest, err := asn1.Unmarshal(der, v); err != nil || len(rest) > 0 {
		return badCSR("CSR %s extension is malformed", name)
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
