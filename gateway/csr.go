package gateway

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// checkCSR holds a finalize request to RFC 8555 §7.4: a valid signature, an
// accepted key that is not the account's, and exactly the order's names.
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
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return badCSR("CSR may only name DNS names and IP addresses")
	}
	wantNames, wantIPs := orderNames(o.Identifiers)
	gotNames := make([]string, 0, len(csr.DNSNames)+1)
	for _, n := range csr.DNSNames {
		gotNames = append(gotNames, strings.ToLower(n))
	}
	gotIPs := make([]string, 0, len(csr.IPAddresses)+1)
	for _, ip := range csr.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			gotIPs = append(gotIPs, a.Unmap().String())
		}
	}
	if cn := strings.ToLower(csr.Subject.CommonName); cn != "" {
		// The common name, when present, must repeat one of the names.
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
