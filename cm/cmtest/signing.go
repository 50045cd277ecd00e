package cmtest

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/caddyacmegw/caddyacmegw/cm"
)

// challengeLife is how long a dataToSign may be answered. CM's own rule is
// unknown [U]; the simulator holds the caller to a short, single use.
const challengeLife = 5 * time.Minute

// write is a write request as the signing step sees it.
type write struct {
	route     string
	digest    [32]byte // SHA-256 of what the request asks for: binds dataToSign to it
	signature []byte   // DER CMS; nil on the first request
}

// challenge is a dataToSign handed out and not yet answered.
type challenge struct {
	route   string
	digest  [32]byte
	expires time.Time
}

// authorize is PGWY's signing step for a write to a procedure: with VRO
// the write goes ahead; with caller signing an unsigned request is answered
// with data to sign, and a signed one goes ahead only when its signature
// verifies against the officer CA and signs, verbatim, a dataToSign handed
// out for this very request and not used before. It reports whether the
// write may be carried out; when not, it has answered.
func (s *Server) authorize(w http.ResponseWriter, proc Procedure, wr write) bool {
	switch {
	case proc.VRO:
		s.mu.Lock()
		s.countSigned(wr)
		s.mu.Unlock()
		return true
	case wr.signature == nil:
		s.challenge(w, wr)
		return false
	}
	if msg := s.acceptSignature(wr); msg != "" {
		writeError(w, http.StatusForbidden, "%s", msg)
		return false
	}
	return true
}

// challenge answers with fresh data to sign for wr [P].
func (s *Server) challenge(w http.ResponseWriter, wr write) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	data := fmt.Sprintf("cmtest %s nonce=%s request=%s", wr.route, hex.EncodeToString(nonce), hex.EncodeToString(wr.digest[:]))
	s.mu.Lock()
	s.challenges[data] = challenge{route: wr.route, digest: wr.digest, expires: time.Now().Add(challengeLife)}
	s.counts.Challenges++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, cm.SignChallenge{Msg: "Sign request and send again",
		DataToSign: base64.StdEncoding.EncodeToString([]byte(data))})
}

// acceptSignature checks wr's signature and uses up its dataToSign; it
// returns why the signature is refused, or "".
func (s *Server) acceptSignature(wr write) string {
	p7, err := pkcs7.Parse(wr.signature)
	if err != nil {
		return "signature is not a CMS SignedData"
	}
	if len(p7.Signers) != 1 || p7.GetOnlySigner() == nil {
		return "signature must have one signer, its certificate included"
	}
	officers := x509.NewCertPool()
	officers.AddCert(s.offCA.cert)
	if err := p7.VerifyWithChain(officers); err != nil {
		return "signature does not verify against the officer CA: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.challenges[string(p7.Content)]
	switch {
	case !ok:
		return "signed data is not a dataToSign pending here (unknown, or used already)"
	case time.Now().After(ch.expires):
		delete(s.challenges, string(p7.Content))
		return "dataToSign expired"
	case ch.route != wr.route || !bytes.Equal(ch.digest[:], wr.digest[:]):
		return "dataToSign was handed out for another request"
	}
	delete(s.challenges, string(p7.Content))
	s.signatures = append(s.signatures, wr.signature)
	s.countSigned(wr)
	return ""
}

// countSigned counts a write accepted as signed; s.mu is held.
func (s *Server) countSigned(wr write) {
	s.counts.SignedWrites++
	if wr.route == RouteIssue {
		s.counts.SignedIssues++
	}
}

// takeSignedFault uses up one failure of FaultSigned, if any is left.
func (s *Server) takeSignedFault() (SignedFault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults.signed
	if f.N <= 0 {
		return f, false
	}
	s.faults.signed.N--
	return f, true
}

// failWrite answers a write as f says: no answer, or f.Status.
func failWrite(w http.ResponseWriter, f SignedFault) {
	if f.Status == 0 {
		dropConnection(w)
		return
	}
	writeError(w, f.Status, "simulated failure")
}
