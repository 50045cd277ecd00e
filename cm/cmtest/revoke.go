package cmtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/caddyacmegw/caddyacmegw/cm"
)

// revoke serves POST {base}/certificates/revoke, a signed write [D]. Its
// body and answers are unknown [U]: the simulator reads the assumed
// cm.RevokeRequest strictly, and answers 404 for an unknown serial,
// 409 for a certificate revoked already, and 200 {"msg": "revoked"}.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, _ string, proc Procedure) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "want application/json")
		return
	}
	var req cm.RevokeRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return
	}
	if !slices.Contains([]int{0, 1, 3, 4, 5}, req.RevocationReason) {
		writeError(w, http.StatusBadRequest, "unsupported revocationReason %d", req.RevocationReason)
		return
	}
	serial := normSerial(req.CertificateSerialNumber)
	if serial == "" {
		writeError(w, http.StatusBadRequest, "certificateSerialNumber is not hex")
		return
	}
	wr := write{route: RouteRevoke, digest: sha256.Sum256([]byte(serial + "/" + strconv.Itoa(req.RevocationReason)))}
	if req.Signature != "" {
		sig, err := base64.StdEncoding.DecodeString(req.Signature)
		if err != nil || len(sig) == 0 {
			writeError(w, http.StatusBadRequest, "signature is not base64")
			return
		}
		wr.signature = sig
	}
	if !s.revocable(w, serial) || !s.authorize(w, proc, wr) {
		return
	}
	f, fail := s.takeSignedFault()
	if fail && !f.AfterWrite {
		failWrite(w, f)
		return
	}
	s.mu.Lock()
	c := s.bySerial[serial]
	again := c.revoked
	if !again {
		c.revoked, c.reason = true, req.RevocationReason
		s.counts.Revoked++
	}
	s.mu.Unlock()
	switch {
	case fail:
		failWrite(w, f)
	case again:
		writeError(w, http.StatusConflict, "certificate already revoked")
	default:
		writeJSON(w, http.StatusOK, cm.ErrorResponse{Msg: "revoked"})
	}
}

// revocable answers 404 or 409 unless the certificate with serial is
// known and not revoked.
func (s *Server) revocable(w http.ResponseWriter, serial string) bool {
	s.mu.Lock()
	c, ok := s.bySerial[serial]
	revoked := ok && c.revoked
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "no certificate with serial %s", serial)
	case revoked:
		writeError(w, http.StatusConflict, "certificate already revoked")
	default:
		return true
	}
	return false
}
