package caddyacmegw

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
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
	f := storage.CertificateFilter{AccountID: v.Get("account"), Name: strings.ToLower(v.Get("name")), Status: v.Get("status")}
	if s := v.Get("serial"); s != "" {
		if f.Serial, err = normalizeSerial(s); err != nil {
			return err
		}
	}
	if err := checkStatus(f.Status, storage.StatusValid, storage.StatusRevoked); err != nil {
		return err
	}
	certs, next, err := q.h.store.ListCertificates(q.r.Context(), f, p.cursor, p.limit)
	if err != nil {
		return storeError(err, "certificates")
	}
	out := certificatesPage{Certificates: []certificateView{}, Next: next}
	for _, c := range certs {
		out.Certificates = append(out.Certificates, viewCertificate(c))
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (q *adminRequest) getCertificate(serial string) error {
	serial, err := normalizeSerial(serial)
	if err != nil {
		return err
	}
	c, err := q.h.store.GetCertificate(q.r.Context(), serial)
	if err != nil {
		return storeError(err, "certificate "+serial)
	}
	v := viewCertificate(c)
	v.ChainPEM = string(c.ChainPEM)
	return writeJSON(q.w, http.StatusOK, v)
}

// revokeCertificate revokes at the CA first and records the revocation only
// once the CA confirmed it, so that the record never claims more than the
// CA did; a failed record after a confirmed revocation is retried once and
// otherwise reported (the CA's CRL is then the truth).
func (q *adminRequest) revokeCertificate(serial string) error {
	serial, err := normalizeSerial(serial)
	if err != nil {
		return err
	}
	var body struct {
		Reason *int `json:"reason"`
	}
	if err := readJSON(q.w, q.r, &body); err != nil {
		return err
	}
	reason := 0
	if body.Reason != nil {
		reason = *body.Reason
	}
	if !gateway.RevocationReasonAllowed(reason) {
		return apiError(http.StatusBadRequest, "reason %d not accepted; use 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded) or 5 (cessationOfOperation)", reason)
	}
	ctx := context.WithoutCancel(q.r.Context())
	c, err := q.h.store.GetCertificate(ctx, serial)
	if err != nil {
		return storeError(err, "certificate "+serial)
	}
	if c.Status == storage.StatusRevoked {
		return apiError(http.StatusConflict, "certificate %s is revoked already", serial)
	}
	if !q.h.now().Before(c.NotAfter) {
		return apiError(http.StatusConflict, "certificate %s expired at %s; revoking it has no effect", serial, c.NotAfter.UTC().Format(time.RFC3339))
	}
	block, _ := pem.Decode(c.ChainPEM)
	if block == nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: errors.New("stored chain holds no PEM"), Message: "stored certificate cannot be read"}
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err, Message: "stored certificate cannot be parsed"}
	}
	if err := q.h.issuer.Revoke(ctx, leaf, reason); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: err, Message: "the issuer did not revoke the certificate: " + err.Error()}
	}
	revokedAt := q.h.now()
	errRaced := errors.New("revoked concurrently")
	err = retryConflict(func() error {
		if c.Status == storage.StatusRevoked {
			return errRaced
		}
		revoked := *c // c stays as stored until the write succeeds
		gateway.CertificateRevoked(&revoked, reason, revokedAt)
		err := q.h.store.UpdateCertificate(ctx, &revoked)
		switch {
		case err == nil:
			c = &revoked
		case errors.Is(err, storage.ErrConflict):
			fresh, err2 := q.h.store.GetCertificate(ctx, serial)
			if err2 != nil {
				return err2
			}
			c = fresh
		}
		return err
	})
	if errors.Is(err, errRaced) {
		return apiError(http.StatusConflict, "certificate %s was revoked concurrently", serial)
	}
	if err != nil {
		q.h.logger.Error("the issuer revoked a certificate but recording it failed", zap.String("gateway", q.h.Name), zap.String("serial", serial), zap.Error(err))
		return storeError(err, "certificate "+serial)
	}
	q.audit(ctx, "certificate.revoke", serial, map[string]any{
		"reason":     reason,
		"account_id": c.AccountID,
		"names":      c.Names,
	})
	return writeJSON(q.w, http.StatusOK, viewCertificate(c))
}

// normalizeSerial accepts a serial as officers copy it (upper case, colons,
// leading zeros) and returns it as stored: lower-case hex, no leading zeros.
func normalizeSerial(s string) (string, error) {
	if len(s) > 128 {
		return "", apiError(http.StatusBadRequest, "serial is too long")
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(s, ":", ""), 16)
	if !ok || n.Sign() < 0 {
		return "", apiError(http.StatusBadRequest, "serial %q is not a hexadecimal number", s)
	}
	return n.Text(16), nil
}
