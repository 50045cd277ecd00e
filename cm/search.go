package cm

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// issuedSkew is how much earlier than the request a certificate's
// notBefore may lie and still be taken as its answer: CAs backdate
// notBefore by a few minutes for clients with slow clocks.
const issuedSkew = 10 * time.Minute

// FindIssued looks for a certificate that CM issued for csr through
// procedure's endpoint since the request was sent: for csr's key, exactly
// csr's names, and a notBefore no earlier than since (less a skew). It is
// how the answer to an issue request that was lost is found. It returns an
// *Error of KindNotFound when there is none.
//
// The search is by the subject's common name [D]; a CSR without one is
// looked up by its first name, which is what CM is assumed to put there
// [I]. The answer's schema is unknown [U], so every certificate found in it
// is checked here, whatever field carried it.
func (c *Client) FindIssued(ctx context.Context, csr *x509.CertificateRequest, procedure string, since time.Time) (*Result, error) {
	base, err := c.endpoint(procedure)
	if err != nil {
		return nil, err
	}
	cn := csr.Subject.CommonName
	if cn == "" {
		cn = firstName(csr)
	}
	certs, err := c.search(ctx, base, url.Values{QueryCommonName: {cn}})
	if err != nil {
		return nil, err
	}
	for _, cert := range certs {
		if !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) ||
			cert.NotBefore.Before(since.Add(-issuedSkew)) || !sameNames(cert, csr) {
			continue
		}
		chain, err := c.chainOf(cert, certs)
		if err != nil {
			return nil, protocolError("search", http.StatusOK, err.Error())
		}
		return &Result{Serial: SerialHex(cert.SerialNumber), Chain: chain}, nil
	}
	return nil, &Error{Op: "search", Final: true, notFound: true, Message: "no certificate for the request's key and names"}
}

// revokedAtCM asks CM whether the certificate with serial is revoked: a
// search by serial must find it (so that the serial's format is
// understood), and the same search for certificates not revoked must not.
func (c *Client) revokedAtCM(ctx context.Context, base string, serial *big.Int) (bool, error) {
	q := url.Values{QuerySerial: {SerialHex(serial)}}
	all, err := c.search(ctx, base, q)
	if err != nil {
		return false, err
	}
	has := func(certs []*x509.Certificate) bool {
		return slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(serial) == 0 })
	}
	if !has(all) {
		return false, &Error{Op: "search", Final: true, notFound: true, Message: "no certificate with serial " + SerialHex(serial)}
	}
	q.Set(QueryNotRevoked, queryTrue)
	valid, err := c.search(ctx, base, q)
	if err != nil {
		return false, err
	}
	return !has(valid), nil
}

// search runs GET {base}/certificates with q and returns every certificate
// the answers hold, asking for the next page while a page is full, up to
// searchPages pages.
func (c *Client) search(ctx context.Context, base string, q url.Values) ([]*x509.Certificate, error) {
	q.Set(QuerySearchLimit, strconv.Itoa(searchLimit))
	var out []*x509.Certificate
	for page := 0; page < searchPages; page++ {
		q.Set(QuerySearchOffset, strconv.Itoa(page*searchLimit))
		a, err := c.call(ctx, exchange{op: "search", method: http.MethodGet, url: base + PathCertificates + "?" + q.Encode(),
			accept: mediaJSON, limit: maxSearch}, transientOnly)
		if err != nil {
			return nil, err
		}
		ders, err := certificatesIn(a.body)
		if err != nil {
			return nil, protocolError("search", a.status, "answer is not JSON")
		}
		for _, der := range ders {
			if cert, err := x509.ParseCertificate(der); err == nil {
				out = append(out, cert)
			}
		}
		if len(ders) < searchLimit {
			break
		}
	}
	return out, nil
}

// firstName is a CSR's first DNS name, else its first address.
func firstName(csr *x509.CertificateRequest) string {
	if len(csr.DNSNames) > 0 {
		return csr.DNSNames[0]
	}
	if len(csr.IPAddresses) > 0 {
		return csr.IPAddresses[0].String()
	}
	return ""
}

// sameNames reports whether cert names exactly csr's DNS names and addresses.
func sameNames(cert *x509.Certificate, csr *x509.CertificateRequest) bool {
	ips := func(list []net.IP) []string {
		out := make([]string, len(list))
		for i, ip := range list {
			out[i] = ip.String()
		}
		return out
	}
	set := func(xs []string) []string { return slices.Compact(slices.Sorted(slices.Values(xs))) }
	return slices.Equal(set(cert.DNSNames), set(csr.DNSNames)) && slices.Equal(set(ips(cert.IPAddresses)), set(ips(csr.IPAddresses)))
}
