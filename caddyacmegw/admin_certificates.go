package caddyacmegw

import (
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// certificateView is a certificate as officers see it; ChainPEM only when
// asked for one certificate.
type certificateView struct {
	Serial           string     `json:"serial"`
	Status           string     `json:"status"`
	Names            []string   `json:"names"`
	AccountID        string     `json:"account_id"`
	OrderID          string     `json:"order_id"`
	Profile          string     `json:"profile,omitempty"`
	NotBefore        time.Time  `json:"not_before"`
	NotAfter         time.Time  `json:"not_after"`
	IssuedAt         time.Time  `json:"issued_at"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason *int       `json:"revocation_reason,omitempty"`
	ChainPEM         string     `json:"chain_pem,omitempty"`
	// Replaces and ReplacedBy are serials (RFC 9773 renewals).
	Replaces   string `json:"replaces,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
}

func viewCertificate(c *storage.Certificate) certificateView {
	v := certificateView{
		Serial:    c.Serial,
		Status:    c.Status,
		Names:     c.Names,
		AccountID: c.AccountID,
		OrderID:   c.OrderID,
		Profile:   c.Profile,
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
		IssuedAt:  c.IssuedAt,
	}
	v.Replaces, v.ReplacedBy = c.Replaces, c.ReplacedBy
	if v.Names == nil {
		v.Names = []string{}
	}
	if c.Status == storage.StatusRevoked {
		t, reason := c.RevokedAt, c.RevocationReason
		v.RevokedAt, v.RevocationReason = &t, &reason
	}
	return v
}

func (q *adminRequest) listCertificates() error {
	v, p, err := q.query("account", "name", "serial", "status")
	if err != nil {
		return err
	}
	f := storage.CertificateFilter{AccountID: v.Get("account"), Name: v.Get("name"), Status: v.Get("status"), Serial: v.Get("serial")}
	out, err := q.officer().listCertificates(q.r.Context(), f, p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (q *adminRequest) getCertificate(serial string) error {
	v, err := q.officer().getCertificate(q.r.Context(), serial)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}

func (q *adminRequest) revokeCertificate(serial string) error {
	var body struct {
		Reason *int `json:"reason"`
	}
	if _, err := normalizeSerial(serial); err != nil {
		return err // refused before its body is read
	}
	if err := readJSON(q.w, q.r, &body); err != nil {
		return err
	}
	reason := 0
	if body.Reason != nil {
		reason = *body.Reason
	}
	v, err := q.officer().revokeCertificate(q.r.Context(), serial, reason)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}
