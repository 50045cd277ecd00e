package cmissuer

import (
	"math/big"
	"net/url"
	"time"
)

// This file holds every wire shape of CM's REST API that the client relies
// on, and nothing else, so that it can be matched to a real CM in one place
// (see /work/shared/CM-REST.md). The JSON bodies of issue and revoke are not
// public: they are the contract's assumptions. The simulator in cmtest
// serves exactly these shapes.

// Paths below the base URL (e.g. https://cm.example.com:8443/pgwy/api).
const (
	PathCertificates = "/certificates"        // POST: issue from a PKCS#10
	PathRevoke       = "/certificates/revoke" // POST: revoke by serial
)

// PathDetails is GET: one certificate (or pending request) by CM's id.
func PathDetails(id string) string { return PathCertificates + "/" + url.PathEscape(id) + "/details" }

// PathDownload is GET: the PEM chain, leaf first.
func PathDownload(id string) string { return PathCertificates + "/" + url.PathEscape(id) + "/download" }

// TimeLayout is ISO 8601 as CM writes it: 2021-12-20T08:01:30Z.
const TimeLayout = time.RFC3339

// IssueRequest is the body of POST /certificates.
type IssueRequest struct {
	Procedure  string `json:"procedure"`
	PKCS10     string `json:"pkcs10"` // standard base64 of the DER CSR
	NotBefore  string `json:"notBefore,omitempty"`
	NotAfter   string `json:"notAfter,omitempty"`
	RFC822Name string `json:"rfc822Name,omitempty"`
}

// CertificateResponse answers POST /certificates (201 with the certificate,
// 202 with only the id) and GET details (the certificate once issued).
type CertificateResponse struct {
	ID           string `json:"id"`
	SerialNumber string `json:"serialNumber,omitempty"` // hex
	Certificate  string `json:"certificate,omitempty"`  // standard base64 of the DER leaf
}

// RevokeRequest is the body of POST /certificates/revoke.
type RevokeRequest struct {
	CertificateSerialNumber string `json:"certificateSerialNumber"` // hex
	RevocationReason        int    `json:"revocationReason"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Message string `json:"message"`
}

// SerialHex writes a serial number the way the wire carries it: lower-case
// hex without leading zeros.
func SerialHex(serial *big.Int) string { return serial.Text(16) }

// ParseSerialHex reads a wire serial number, in either case.
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
