package cmtest

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/caddyacmegw/caddyacmegw/cm"
)

// issue serves POST {base}/certificates/pkcs10: multipart/form-data with
// the part pkcs10 and, on the signed resend, the part signature [D][P].
func (s *Server) issue(w http.ResponseWriter, r *http.Request, name string, proc Procedure) {
	parts, status, msg := readParts(r)
	if status != 0 {
		writeError(w, status, "%s", msg)
		return
	}
	csr, status, msg := s.checkCSR(parts[cm.PartPKCS10], proc)
	if status != 0 {
		writeError(w, status, "%s", msg)
		return
	}
	wr := write{route: RouteIssue, digest: sha256.Sum256(csr.Raw), signature: parts[cm.PartSignature]}
	if !s.authorize(w, proc, wr) {
		return
	}
	f, fail := s.takeSignedFault()
	if fail && !f.AfterWrite {
		failWrite(w, f)
		return
	}
	cert, err := s.issueCert(csr, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "signing failed")
		return
	}
	if fail {
		failWrite(w, f)
		return
	}
	s.answerCert(w, r, proc, cert)
}

// readParts reads the multipart issue request strictly: only the parts
// pkcs10 and signature, once each, with their media types, in base64
// (line breaks allowed).
func readParts(r *http.Request) (map[string][]byte, int, string) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return nil, http.StatusUnsupportedMediaType, "want multipart/form-data"
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, http.StatusBadRequest, "malformed multipart body"
	}
	want := map[string]string{cm.PartPKCS10: cm.MediaPKCS10, cm.PartSignature: cm.MediaSignature}
	parts := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, http.StatusBadRequest, "malformed multipart body"
		}
		name := p.FormName()
		mediaType, ok := want[name]
		switch {
		case !ok:
			return nil, http.StatusBadRequest, "unknown part " + name
		case parts[name] != nil:
			return nil, http.StatusBadRequest, "part " + name + " given twice"
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt != mediaType {
			return nil, http.StatusBadRequest, "part " + name + " must be " + mediaType
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			return nil, http.StatusBadRequest, "malformed multipart body"
		}
		if parts[name], err = decodeBase64Lines(raw); err != nil || len(parts[name]) == 0 {
			return nil, http.StatusBadRequest, "part " + name + " is not base64"
		}
	}
	if parts[cm.PartPKCS10] == nil {
		return nil, http.StatusBadRequest, "no pkcs10 part"
	}
	return parts, 0, ""
}

// checkCSR checks the PKCS#10 request as CM would; a non-zero status
// refuses it.
func (s *Server) checkCSR(der []byte, proc Procedure) (*x509.CertificateRequest, int, string) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, http.StatusBadRequest, "cannot parse the PKCS#10 request"
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, http.StatusBadRequest, "the PKCS#10 signature does not verify"
	}
	s.mu.Lock()
	reject := s.faults.rejectCSR
	s.mu.Unlock()
	switch {
	case reject:
		return nil, http.StatusBadRequest, "the CSR is refused by the token procedure's policy"
	case len(csr.DNSNames) == 0 && len(csr.IPAddresses) == 0:
		return nil, http.StatusBadRequest, "the PKCS#10 request names no DNS name or address"
	}
	for _, name := range csr.DNSNames {
		if len(proc.Domains) > 0 && !slices.ContainsFunc(proc.Domains, func(d string) bool {
			return name == d || strings.HasSuffix(name, "."+d)
		}) {
			return nil, http.StatusForbidden, "identifier " + name + " is not allowed by the token procedure"
		}
	}
	return csr, 0, ""
}

// issueCert signs a certificate for csr from the intermediate. A CSR
// without a common name gets its first name as one: what a CM token
// procedure is assumed to do, so that a search by common name finds it.
func (s *Server) issueCert(csr *x509.CertificateRequest, procedure string) (*x509.Certificate, error) {
	subject := csr.Subject
	if subject.CommonName == "" {
		if len(csr.DNSNames) > 0 {
			subject.CommonName = csr.DNSNames[0]
		} else {
			subject.CommonName = csr.IPAddresses[0].String()
		}
	}
	nb := time.Now().Add(-time.Minute)
	tmpl := &x509.Certificate{
		Subject:     subject,
		DNSNames:    csr.DNSNames,
		IPAddresses: csr.IPAddresses,
		NotBefore:   nb,
		NotAfter:    nb.Add(s.opts.Validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	cert, err := s.inter.sign(tmpl, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &issued{cert: cert, procedure: procedure}
	s.certs = append(s.certs, c)
	s.bySerial[cm.SerialHex(cert.SerialNumber)] = c
	s.counts.Issued++
	s.counts.IssuedBy[procedure]++
	return cert, nil
}

// answerCert answers with the DER certificate when the caller accepts
// application/pkix-cert [P], else (or when the procedure says so) with
// PKCS#7 holding the certificate and the intermediate [D].
func (s *Server) answerCert(w http.ResponseWriter, r *http.Request, proc Procedure, cert *x509.Certificate) {
	if !proc.PKCS7 && acceptsPKIXCert(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", cm.MediaPKIXCert)
		_, _ = w.Write(cert.Raw)
		return
	}
	p7, err := pkcs7.DegenerateCertificate(append(slices.Clone(cert.Raw), s.inter.cert.Raw...))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding PKCS#7 failed")
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime")
	_, _ = w.Write(p7)
}

func acceptsPKIXCert(accept string) bool {
	for _, v := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(v)); err == nil && mt == cm.MediaPKIXCert {
			return true
		}
	}
	return false
}
