package cmtest

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/cm"
)

// searchParams are the documented parameters of GET {base}/certificates
// [D]; true when the simulator applies it, false when it is documented but
// not simulated (answered 501 rather than ignored).
var searchParams = map[string]bool{
	"searchLimit": true, "searchOffset": true, "certificateSerialNumber": true,
	"isNotRevoked": true, "revocationReason": true, "subjectCommonName": true,
	"revocationTimeFrom": false, "revocationTimeTo": false, "subjectOrganisationName": false,
	"subjectOrganisationUnit": false, "subjectSerialNumber": false, "subjectCountry": false,
	"publicationAllowed": false,
}

// search serves GET {base}/certificates over every certificate CM issued,
// whichever procedure issued it. The answer's schema is unknown [U]: the
// simulator answers cm.SearchResult.
func (s *Server) search(w http.ResponseWriter, r *http.Request, _ string, _ Procedure) {
	q := r.URL.Query()
	for k := range q {
		simulated, known := searchParams[k]
		switch {
		case !known:
			writeError(w, http.StatusBadRequest, "unknown search parameter %s", k)
			return
		case !simulated:
			writeError(w, http.StatusNotImplemented, "search parameter %s is not simulated", k)
			return
		}
	}
	limit, offset, ok := atoiOr(q.Get("searchLimit"), 100), atoiOr(q.Get("searchOffset"), 0), true
	if limit < 0 || offset < 0 {
		ok = false
	}
	notRevoked := q.Get("isNotRevoked")
	if notRevoked != "" && notRevoked != "true" && notRevoked != "false" {
		ok = false
	}
	reason := -1
	if v := q.Get("revocationReason"); v != "" {
		reason = atoiOr(v, -2)
		ok = ok && reason >= 0
	}
	serial := ""
	if v := q.Get("certificateSerialNumber"); v != "" {
		serial = normSerial(v)
		ok = ok && serial != ""
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "malformed search parameter")
		return
	}
	cn := q.Get("subjectCommonName")
	var res cm.SearchResult
	s.mu.Lock()
	for _, c := range s.certs {
		switch {
		case serial != "" && cm.SerialHex(c.cert.SerialNumber) != serial,
			cn != "" && !strings.EqualFold(c.cert.Subject.CommonName, cn),
			notRevoked == "true" && c.revoked, notRevoked == "false" && !c.revoked,
			reason >= 0 && (!c.revoked || c.reason != reason):
			continue
		}
		res.Certificates = append(res.Certificates, cm.SearchEntry{
			CertificateSerialNumber: cm.SerialHex(c.cert.SerialNumber),
			Certificate:             base64.StdEncoding.EncodeToString(c.cert.Raw),
			Revoked:                 c.revoked,
		})
	}
	s.mu.Unlock()
	res.Certificates = res.Certificates[min(offset, len(res.Certificates)):]
	res.Certificates = res.Certificates[:min(limit, len(res.Certificates))]
	writeJSON(w, http.StatusOK, res)
}

// atoiOr is s as a number, def when s is empty, -1 when it is not a number.
func atoiOr(s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
