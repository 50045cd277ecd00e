package validate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/miekg/dns"
)

// acmeTLSProtocol is the ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
const acmeTLSProtocol = "acme-tls/1"

var (
	// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1).
	oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}
	// oidSubjectAltName is id-ce-subjectAltName (RFC 5280 §4.2.1.6).
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// GeneralName tags (RFC 5280 §4.2.1.6) that tls-alpn-01 accepts.
const (
	sanTagDNS = 2
	sanTagIP  = 7
)

// TLSALPN01 connects to identifier on TLSPort, offering only the ALPN
// protocol acme-tls/1, and checks the certificate the server presents
// (RFC 8737 §3): its one subjectAltName must be identifier, and its
// critical acmeIdentifier extension must hold SHA-256(keyAuth).
//
// identifier is a DNS name, resolved through the configured resolvers, or
// an IP address (RFC 8738), dialled as is; DenyNetworks applies to both.
// The SNI is the name, or for an address its reverse-DNS name such as
// "4.3.2.1.in-addr.arpa" (RFC 8738 §6). The certificate chain is not
// verified: the acmeIdentifier proves control, not a CA.
//
// It returns nil on success and an *Error for every validation failure:
//   - KindDNS: the name does not resolve;
//   - KindConnection: no connection, or it broke or timed out during the
//     handshake (the Detail names the address);
//   - KindTLS: the handshake failed at the TLS level (an alert, a protocol
//     error, a certificate that does not parse) or did not negotiate
//     acme-tls/1;
//   - KindUnauthorized: the handshake worked but the certificate does not
//     prove control (wrong or extra subjectAltNames, acmeIdentifier
//     missing, not critical, malformed or holding another digest).
//
// A malformed identifier or an empty keyAuth, a bug in the caller, gives a
// plain error.
func (v *Validator) TLSALPN01(ctx context.Context, identifier, keyAuth string) error {
	if keyAuth == "" {
		return errors.New("validate: empty key authorization")
	}
	host, sni, ip, err := alpnTarget(identifier)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	var remote string
	conn, err := v.dialHost(ctx, host, strconv.Itoa(v.tlsPort), func(a string) { remote = a })
	if err != nil {
		return err
	}
	defer conn.Close()

	//nolint:gosec // RFC 8737 §3: the acmeIdentifier is checked below, the chain is not.
	tc := tls.Client(conn, &tls.Config{
		ServerName:         sni,
		NextProtos:         []string{acmeTLSProtocol},
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12, // RFC 8737 §4
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return handshakeError(ctx, remote, identifier, err)
	}
	state := tc.ConnectionState()
	if state.NegotiatedProtocol != acmeTLSProtocol {
		return newError(KindTLS, nil, "TLS handshake with %s for %s did not negotiate %s (got %s)",
			remote, identifier, acmeTLSProtocol, truncate(state.NegotiatedProtocol, 32))
	}
	if len(state.PeerCertificates) == 0 {
		return newError(KindTLS, nil, "TLS server at %s for %s presented no certificate", remote, identifier)
	}
	if reason := checkALPNCert(state.PeerCertificates[0], identifier, ip, keyAuth); reason != "" {
		return newError(KindUnauthorized, nil, "incorrect tls-alpn-01 certificate from %s for %s: %s", remote, identifier, reason)
	}
	return nil
}

// alpnTarget returns what to dial and the SNI to send for identifier; ip
// is valid when identifier is an address.
func alpnTarget(identifier string) (host, sni string, ip netip.Addr, err error) {
	if a, perr := netip.ParseAddr(identifier); perr == nil {
		if a.Zone() != "" {
			return "", "", netip.Addr{}, fmt.Errorf("validate: address %q has a zone", identifier)
		}
		a = a.Unmap()
		return a.String(), reverseName(a), a, nil
	}
	if err := checkName(identifier); err != nil {
		return "", "", netip.Addr{}, err
	}
	name := strings.TrimSuffix(identifier, ".")
	return name, name, netip.Addr{}, nil
}

// reverseName is the in-addr.arpa or ip6.arpa name of a, without the final
// dot, which RFC 8738 §6 makes the SNI for an IP identifier.
func reverseName(a netip.Addr) string {
	r, err := dns.ReverseAddr(a.Unmap().String())
	if err != nil { // cannot happen for a valid netip.Addr
		return ""
	}
	return strings.TrimSuffix(r, ".")
}

// handshakeError sorts a failed handshake: a broken or slow connection is
// KindConnection, anything the TLS layer rejected is KindTLS.
func handshakeError(ctx context.Context, remote, identifier string, err error) error {
	switch {
	case ctx.Err() != nil || isTimeout(err):
		return newError(KindConnection, err, "TLS handshake with %s for %s: timeout", remote, identifier)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return newError(KindConnection, err, "TLS handshake with %s for %s: connection closed by the server", remote, identifier)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return newError(KindConnection, err, "TLS handshake with %s for %s: %s", remote, identifier, connReason(err))
	}
	return newError(KindTLS, err, "TLS handshake with %s for %s failed: %s", remote, identifier, truncate(err.Error(), 200))
}

// checkALPNCert returns why cert does not prove control of identifier
// (ip valid for an address), or "" when it does.
func checkALPNCert(cert *x509.Certificate, identifier string, ip netip.Addr, keyAuth string) string {
	sans, err := subjectAltNames(cert)
	if err != nil {
		return err.Error()
	}
	want := "DNS:" + strings.TrimSuffix(identifier, ".")
	if ip.IsValid() {
		want = "IP:" + ip.String()
	}
	if len(sans) != 1 || !sanMatches(sans[0], identifier, ip) {
		return fmt.Sprintf("want exactly one subjectAltName %s, got %d: %s", want, len(sans), describeSANs(sans))
	}

	ext, err := acmeIdentifierExtension(cert)
	if err != nil {
		return err.Error()
	}
	if !ext.Critical {
		return "acmeIdentifier extension is not critical"
	}
	var got []byte
	if rest, err := asn1.Unmarshal(ext.Value, &got); err != nil || len(rest) != 0 || len(got) != sha256.Size {
		return "acmeIdentifier extension is not a SHA-256 digest in an OCTET STRING"
	}
	sum := sha256.Sum256([]byte(keyAuth))
	if subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return "acmeIdentifier extension does not hold the SHA-256 digest of the key authorization"
	}
	return ""
}

// subjectAltNames returns the GeneralNames of cert's subjectAltName
// extension, of every type: x509.Certificate drops the types it does not
// know, and RFC 8737 allows no other entry at all.
func subjectAltNames(cert *x509.Certificate) ([]asn1.RawValue, error) {
	var sans []asn1.RawValue
	found := false
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidSubjectAltName) {
			continue
		}
		if found {
			return nil, errors.New("certificate has two subjectAltName extensions")
		}
		found = true
		if rest, err := asn1.Unmarshal(e.Value, &sans); err != nil || len(rest) != 0 {
			return nil, errors.New("certificate has a malformed subjectAltName extension")
		}
	}
	if !found {
		return nil, errors.New("certificate has no subjectAltName extension")
	}
	return sans, nil
}

func sanMatches(san asn1.RawValue, identifier string, ip netip.Addr) bool {
	if san.Class != asn1.ClassContextSpecific || san.IsCompound {
		return false
	}
	if ip.IsValid() {
		a, ok := netip.AddrFromSlice(san.Bytes)
		return san.Tag == sanTagIP && ok && a.Unmap() == ip
	}
	return san.Tag == sanTagDNS && strings.EqualFold(string(san.Bytes), strings.TrimSuffix(identifier, "."))
}

// describeSANs lists a few subjectAltNames for a Detail.
func describeSANs(sans []asn1.RawValue) string {
	if len(sans) == 0 {
		return "none"
	}
	var shown []string
	for i, san := range sans {
		if i == maxShownValues {
			shown = append(shown, "...")
			break
		}
		a, isIP := netip.AddrFromSlice(san.Bytes)
		switch {
		case san.Class == asn1.ClassContextSpecific && san.Tag == sanTagDNS:
			shown = append(shown, "DNS:"+truncate(string(san.Bytes), maxShownLen))
		case san.Class == asn1.ClassContextSpecific && san.Tag == sanTagIP && isIP:
			shown = append(shown, "IP:"+a.Unmap().String())
		default:
			shown = append(shown, fmt.Sprintf("[%d]", san.Tag))
		}
	}
	return strings.Join(shown, ", ")
}

// acmeIdentifierExtension returns cert's one acmeIdentifier extension.
func acmeIdentifierExtension(cert *x509.Certificate) (*pkix.Extension, error) {
	var ext *pkix.Extension
	for i := range cert.Extensions {
		if !cert.Extensions[i].Id.Equal(oidACMEIdentifier) {
			continue
		}
		if ext != nil {
			return nil, errors.New("certificate has two acmeIdentifier extensions")
		}
		ext = &cert.Extensions[i]
	}
	if ext == nil {
		return nil, errors.New("certificate has no acmeIdentifier extension")
	}
	return ext, nil
}
