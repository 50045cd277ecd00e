package cmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/cmissuer"
)

// record is one issue request and, once issued, its certificate.
type record struct {
	csr                 *x509.CertificateRequest
	notBefore, notAfter time.Time
	email               string
	cert                *x509.Certificate // nil while pending
	revoked             bool
	reason              int
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.route(mux, "POST "+cmissuer.PathCertificates, s.issue)
	s.route(mux, "POST "+cmissuer.PathRevoke, s.revoke)
	s.route(mux, "GET "+cmissuer.PathCertificates+"/{id}/details", s.details)
	s.route(mux, "GET "+cmissuer.PathCertificates+"/{id}/download", s.download)
	return mux
}

// route registers h below BasePath behind the counters, the faults on
// demand and the officer's role check.
func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	mux.HandleFunc(method+" "+BasePath+path, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts.Requests[pattern]++
		f := s.faults
		if s.faults.drops > 0 {
			s.faults.drops--
		} else if s.faults.failN > 0 {
			s.faults.failN--
		}
		s.mu.Unlock()
		switch {
		case f.drops > 0:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		case f.latency > 0:
			t := time.NewTimer(f.latency)
			defer t.Stop()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
		if f.failN > 0 {
			writeError(w, f.failStatus, "simulated failure")
			return
		}
		if missing := s.missingRoles(r); len(missing) > 0 {
			writeError(w, http.StatusForbidden, "officer lacks required role(s) %s", strings.Join(missing, ", "))
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "want application/json")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		}
		h(w, r)
	})
}

// missingRoles are the required roles that the officer certificate (already
// verified by the TLS handshake) does not hold as OU values.
func (s *Server) missingRoles(r *http.Request) []string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return s.opts.RequiredRoRoles
	}
	held := r.TLS.PeerCertificates[0].Subject.OrganizationalUnit
	var missing []string
	for _, role := range s.opts.RequiredRoRoles {
		if !slices.Contains(held, role) {
			missing = append(missing, role)
		}
	}
	return missing
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	var req cmissuer.IssueRequest
	if !decode(w, r, &req) {
		return
	}
	proc, ok := s.opts.Procedures[req.Procedure]
	if !ok {
		writeError(w, http.StatusBadRequest, "unknown token procedure %q", req.Procedure)
		return
	}
	rec, status, msg := s.parseIssue(req, proc)
	if status != 0 {
		writeError(w, status, "%s", msg)
		return
	}
	id := randomID()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[id] = rec
	if proc.Approval {
		s.counts.Pending++
		writeJSON(w, http.StatusAccepted, cmissuer.CertificateResponse{ID: id})
		return
	}
	if err := s.issueLocked(id, rec); err != nil {
		writeError(w, http.StatusInternalServerError, "signing failed")
		return
	}
	writeJSON(w, http.StatusCreated, certResponse(id, rec))
}

// parseIssue checks req as CM would; a non-zero status refuses it.
func (s *Server) parseIssue(req cmissuer.IssueRequest, proc Procedure) (*record, int, string) {
	der, err := base64.StdEncoding.DecodeString(req.PKCS10)
	if err != nil {
		return nil, http.StatusBadRequest, "pkcs10 is not base64"
	}
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
	if reject {
		return nil, http.StatusBadRequest, "the CSR is refused by the token procedure's policy"
	}
	rec := &record{csr: csr, email: req.RFC822Name}
	for _, t := range []struct {
		in  string
		out *time.Time
	}{{req.NotBefore, &rec.notBefore}, {req.NotAfter, &rec.notAfter}} {
		if t.in == "" {
			continue
		}
		if *t.out, err = time.Parse(cmissuer.TimeLayout, t.in); err != nil {
			return nil, http.StatusBadRequest, "notBefore/notAfter is not ISO 8601"
		}
	}
	if !rec.notBefore.IsZero() && !rec.notAfter.IsZero() && !rec.notAfter.After(rec.notBefore) {
		return nil, http.StatusBadRequest, "notAfter is not after notBefore"
	}
	for _, name := range csr.DNSNames {
		if len(proc.Domains) > 0 && !slices.ContainsFunc(proc.Domains, func(d string) bool {
			return name == d || strings.HasSuffix(name, "."+d)
		}) {
			return nil, http.StatusForbidden, fmt.Sprintf("identifier %q is not allowed by the token procedure", name)
		}
	}
	return rec, 0, ""
}

// issueLocked signs rec from the intermediate; s.mu is held.
func (s *Server) issueLocked(id string, rec *record) error {
	nb, na := rec.notBefore, rec.notAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	if na.IsZero() {
		na = nb.Add(s.opts.Validity)
	}
	tmpl := &x509.Certificate{
		Subject:        rec.csr.Subject,
		DNSNames:       rec.csr.DNSNames,
		IPAddresses:    rec.csr.IPAddresses,
		EmailAddresses: rec.csr.EmailAddresses,
		URIs:           rec.csr.URIs,
		NotBefore:      nb,
		NotAfter:       na,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if rec.email != "" && !slices.Contains(tmpl.EmailAddresses, rec.email) {
		tmpl.EmailAddresses = append(slices.Clone(tmpl.EmailAddresses), rec.email)
	}
	if _, ok := rec.csr.PublicKey.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	cert, err := s.inter.sign(tmpl, rec.csr.PublicKey)
	if err != nil {
		return err
	}
	rec.cert = cert
	s.serials[cmissuer.SerialHex(cert.SerialNumber)] = id
	s.counts.Issued++
	return nil
}

func (s *Server) details(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[id]
	if !ok {
		writeError(w, http.StatusNotFound, "no certificate request %q", id)
		return
	}
	writeJSON(w, http.StatusOK, certResponse(id, rec))
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	var cert *x509.Certificate
	if rec, ok := s.records[id]; ok {
		cert = rec.cert
	}
	s.mu.Unlock()
	if cert == nil {
		writeError(w, http.StatusNotFound, "no issued certificate %q", id)
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	_, _ = w.Write(certPEMOf(cert, s.inter.cert))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	var req cmissuer.RevokeRequest
	if !decode(w, r, &req) {
		return
	}
	if !slices.Contains([]int{0, 1, 3, 4, 5}, req.RevocationReason) {
		writeError(w, http.StatusBadRequest, "unsupported revocationReason %d", req.RevocationReason)
		return
	}
	serial, ok := cmissuer.ParseSerialHex(req.CertificateSerialNumber)
	if !ok {
		writeError(w, http.StatusBadRequest, "certificateSerialNumber is not hex")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[s.serials[cmissuer.SerialHex(serial)]]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "no certificate with serial %s", cmissuer.SerialHex(serial))
	case rec.revoked:
		writeError(w, http.StatusConflict, "certificate already revoked")
	default:
		rec.revoked, rec.reason = true, req.RevocationReason
		s.counts.Revoked++
		w.WriteHeader(http.StatusNoContent)
	}
}

func certResponse(id string, rec *record) cmissuer.CertificateResponse {
	if rec.cert == nil {
		return cmissuer.CertificateResponse{ID: id}
	}
	return cmissuer.CertificateResponse{ID: id, SerialNumber: cmissuer.SerialHex(rec.cert.SerialNumber),
		Certificate: base64.StdEncoding.EncodeToString(rec.cert.Raw)}
}

// normSerial is the key of s.serials for a wire serial.
func normSerial(serialHex string) string {
	n, ok := cmissuer.ParseSerialHex(serialHex)
	if !ok {
		return ""
	}
	return cmissuer.SerialHex(n)
}

// decode reads a JSON body strictly: unknown fields are refused, so a
// client that drifts from wire.go fails here.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, cmissuer.ErrorResponse{Message: fmt.Sprintf(format, args...)})
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
