package cm

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"regexp"
)

// This file holds every wire shape of CM's REST API (served by Protocol
// Gateway, PGWY) that the client sends or reads, and nothing else, so that
// it can be matched to a real CM in one place. Each shape carries its
// evidence, as in the project's CM-REST reference:
//
//	[D] documented by Nexus
//	[P] seen in a working public client
//	[I] inferred from D and P: an assumption
//	[U] unknown: an assumption, read leniently
//
// Everything below the line "Assumptions" is [I] or [U]. The simulator in
// cmtest serves exactly these shapes.

// Paths below a procedure endpoint's base URL (e.g.
// https://cm.example.com:8443/pgwy/api). The token procedure is chosen by
// the endpoint (one PGWY handler each), never by a request field [I].
const (
	// PathPKCS10 issues a certificate from a PKCS#10 request: POST,
	// multipart/form-data [D][P].
	PathPKCS10 = "/certificates/pkcs10"
	// PathCertificates searches certificates: GET with the Query*
	// parameters [D].
	PathCertificates = "/certificates"
	// PathRevoke revokes a certificate; a signed write [D].
	PathRevoke = "/certificates/revoke"
)

// Parts of the multipart issue request [P]. Both hold standard base64 with
// line breaks: the DER CSR, and the DER CMS SignedData of the signed resend.
const (
	PartPKCS10    = "pkcs10"
	PartSignature = "signature"
)

// Media types [P].
const (
	MediaPKCS10    = "application/pkcs10"       // the pkcs10 part
	MediaSignature = "application/octet-stream" // the signature part
	MediaPKIXCert  = "application/pkix-cert"    // Accept, and the DER certificate answered
)

// SignChallenge is PGWY's answer to a write it wants signed by the caller
// (the default signing mode) [P]: sign DataToSign, decoded, verbatim, and
// send the same request again with the signature.
type SignChallenge struct {
	Msg        string `json:"msg"`
	DataToSign string `json:"dataToSign"` // standard base64
}

// Search parameters of GET {base}/certificates [D].
const (
	QuerySerial       = "certificateSerialNumber"
	QueryNotRevoked   = "isNotRevoked"
	QueryCommonName   = "subjectCommonName"
	QuerySearchLimit  = "searchLimit"
	QuerySearchOffset = "searchOffset"
)

// TimeLayout is ISO 8601 UTC as CM's search fields take it [D]:
// 2021-12-20T08:01:30Z.
const TimeLayout = "2006-01-02T15:04:05Z"

// ---------------------------------------------------------------------
// Assumptions. Nothing public describes the shapes below; each is kept
// lenient and named an assumption wherever it is used.
// ---------------------------------------------------------------------

// ErrorResponse is the assumed body of a refusal [U]. The one JSON shape
// seen carries its text in "msg" [P]; "message" is read too.
type ErrorResponse struct {
	Msg     string `json:"msg,omitempty"`
	Message string `json:"message,omitempty"`
}

// Text is the refusal's message, whichever key carried it.
func (e ErrorResponse) Text() string {
	if e.Msg != "" {
		return e.Msg
	}
	return e.Message
}

// Words that sort a refusal [U]: a 400 whose message speaks of the CSR is
// the client's CSR refused (badCSR); a 400, 403 or 422 that speaks of names
// is a name refused (rejectedIdentifier).
var (
	csrWords  = regexp.MustCompile(`(?i)\b(csr|pkcs ?#? ?10|certificate request|certification request)\b`)
	nameWords = regexp.MustCompile(`(?i)\b(identifiers?|domains?|names?|san|subject ?alt(ernative)? ?names?)\b`)
)

// RevokeRequest is the assumed body of the revoke write [U]: JSON, POST,
// with the field names that the search uses [I]. The signed resend adds
// Signature, standard base64 of the DER CMS, as the issue request adds its
// signature part [I].
type RevokeRequest struct {
	CertificateSerialNumber string `json:"certificateSerialNumber"`
	RevocationReason        int    `json:"revocationReason"`
	Signature               string `json:"signature,omitempty"`
}

// The value of QueryNotRevoked that asks for certificates not revoked [I]:
// the search's boolean parameters are documented, their spelling is not.
const queryTrue = "true"

// Media types of the JSON the client sends and accepts besides the
// certificate: the revoke body is assumed JSON (see RevokeRequest) [U], and
// so is the search answer [U].
const mediaJSON = "application/json"

// Other forms of a certificate answer, read leniently [U]: the older
// media types of a DER certificate, and PEM, which a PGWY in front of
// another proxy might answer.
var mediaDERCertAliases = []string{"application/x-x509-cert", "application/x-x509-user-cert"}

// A search page is taken to be full, and the next one asked for with
// QuerySearchOffset, when the answer held searchLimit certificates [I];
// searchPages bounds how many pages one search reads.
const (
	searchLimit = 100
	searchPages = 10
)

// SerialHex writes a serial number as the client sends it in the search
// and the revoke request: lower-case hex without leading zeros [U].
func SerialHex(serial *big.Int) string { return serial.Text(16) }

// ParseSerialHex reads a serial number written as SerialHex, in either case.
func ParseSerialHex(s string) (*big.Int, bool) {
	if s == "" {
		return nil, false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 {
		return nil, false
	}
	return n, true
}

// SearchResult is the shape the simulator answers a search with [U]. The
// client does not rely on it: it reads every certificate it can find in
// the answer (see searchCertificates), whatever the field names.
type SearchResult struct {
	Certificates []SearchEntry `json:"certificates"`
}

// SearchEntry is one certificate of a SearchResult [U].
type SearchEntry struct {
	CertificateSerialNumber string `json:"certificateSerialNumber"`
	Certificate             string `json:"certificate"` // standard base64 of the DER certificate
	Revoked                 bool   `json:"revoked"`
}

// certificatesIn collects the DER bytes of every JSON string anywhere in
// doc that is standard base64 of something, for the caller to try as a
// certificate: the search answer's schema is unknown [U], so no field name
// is relied on.
func certificatesIn(doc []byte) ([][]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	var out [][]byte
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) < 100 { // shorter than any certificate
				return
			}
			if der, err := base64.StdEncoding.DecodeString(v); err == nil {
				out = append(out, der)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out, nil
}
