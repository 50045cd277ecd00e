package cm

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"mime"
	"slices"

	"github.com/smallstep/pkcs7"
)

// maxChainLen bounds the chain built above a leaf.
const maxChainLen = 8

// issued reads CM's answer to an issue request: one DER certificate
// (application/pkix-cert) [P] or a PKCS#7 holding it [D], and returns the
// leaf for csr's key with its chain.
func (c *Client) issued(a answer, csr *x509.CertificateRequest) (*Result, error) {
	certs, err := certificatesOf(a)
	if err != nil {
		return nil, protocolError("issue", a.status, err.Error())
	}
	i := slices.IndexFunc(certs, func(cert *x509.Certificate) bool {
		return bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo)
	})
	if i < 0 {
		return nil, protocolError("issue", a.status, "no certificate for the CSR's key")
	}
	leaf := certs[i]
	chain, err := c.chainOf(leaf, slices.Delete(certs, i, i+1))
	if err != nil {
		return nil, protocolError("issue", a.status, err.Error())
	}
	return &Result{Serial: SerialHex(leaf.SerialNumber), Chain: chain}, nil
}

// certificatesOf parses the certificates of an answer: by its media type
// when it names one, else whichever form parses.
func certificatesOf(a answer) ([]*x509.Certificate, error) {
	mt, _, _ := mime.ParseMediaType(a.contentType)
	body := a.body
	if block, _ := pem.Decode(body); block != nil {
		body = block.Bytes // lenient: a PEM answer
	}
	if mt == MediaPKIXCert || slices.Contains(mediaDERCertAliases, mt) {
		cert, err := x509.ParseCertificate(body)
		if err != nil {
			return nil, errors.New("the answer is not a DER certificate")
		}
		return []*x509.Certificate{cert}, nil
	}
	if cert, err := x509.ParseCertificate(body); err == nil {
		return []*x509.Certificate{cert}, nil
	}
	p7, err := pkcs7.Parse(body)
	if err != nil || len(p7.Certificates) == 0 {
		return nil, errors.New("the answer is neither a certificate nor a PKCS#7 holding one")
	}
	return p7.Certificates, nil
}

// chainOf builds the chain delivered with leaf: leaf, then each issuer up
// to but not including a self-signed root, taken from extra (certificates
// of CM's answer) and the configured chain file. With a chain file the
// path must reach one of its certificates, so that a leaf from another CA
// is refused; without one, CM's answer must carry the chain.
func (c *Client) chainOf(leaf *x509.Certificate, extra []*x509.Certificate) ([]*x509.Certificate, error) {
	pool := append(slices.Clone(extra), c.chain...)
	chain := []*x509.Certificate{leaf}
	linked, anchored := false, false
	for cur := leaf; len(chain) <= maxChainLen; {
		i := slices.IndexFunc(pool, func(p *x509.Certificate) bool {
			return bytes.Equal(p.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(p) == nil
		})
		if i < 0 {
			break
		}
		parent := pool[i]
		linked = true
		anchored = anchored || slices.ContainsFunc(c.chain, parent.Equal)
		if bytes.Equal(parent.RawSubject, parent.RawIssuer) && parent.CheckSignatureFrom(parent) == nil {
			break // a root: clients have it
		}
		chain = append(chain, parent)
		cur = parent
	}
	switch {
	case len(c.chain) > 0 && !anchored:
		return nil, errors.New("the certificate does not chain to the configured chain file")
	case len(c.chain) == 0 && !linked:
		return nil, errors.New("the answer carries no chain and no chain file is configured")
	}
	return chain, nil
}
