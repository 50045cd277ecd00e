package caddyacmegw

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyserver/caddy/v2"
)

// certificateStatuses are the statuses certificates are listed by.
var certificateStatuses = []string{storage.StatusValid, storage.StatusRevoked}

// listCertificates lists certificates by the filter as officers give it:
// a name in any case, a serial as they copy it.
func (o *officer) listCertificates(ctx context.Context, f storage.CertificateFilter, p page) (certificatesPage, error) {
	f.Name = strings.ToLower(f.Name)
	if f.Serial != "" {
		var err error
		if f.Serial, err = normalizeSerial(f.Serial); err != nil {
			return certificatesPage{}, err
		}
	}
	if err := checkStatus(f.Status, certificateStatuses...); err != nil {
		return certificatesPage{}, err
	}
	certs, next, err := o.h.store.ListCertificates(ctx, f, p.cursor, p.limit)
	if err != nil {
		return certificatesPage{}, storeError(err, "certificates")
	}
	out := certificatesPage{Certificates: []certificateView{}, Next: next}
	for _, c := range certs {
		out.Certificates = append(out.Certificates, viewCertificate(c))
	}
	return out, nil
}

// getCertificate is one certificate with its PEM chain.
func (o *officer) getCertificate(ctx context.Context, serial string) (certificateView, error) {
	c, err := o.certificate(ctx, serial)
	if err != nil {
		return certificateView{}, err
	}
	return viewCertificateChain(c), nil
}

// certificate reads the certificate of a serial as officers write it.
func (o *officer) certificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	serial, err := normalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	c, err := o.h.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, storeError(err, "certificate "+serial)
	}
	return c, nil
}

// viewCertificateChain is a certificate with its chain, as one
// certificate's answer has it.
func viewCertificateChain(c *storage.Certificate) certificateView {
	v := viewCertificate(c)
	v.ChainPEM = string(c.ChainPEM)
	return v
}

// revokeCertificate revokes through the gateway's one revocation, which
// records it only once the issuer confirmed. A revocation the issuer made
// but storage did not take is audited too, as not recorded: the CA's act
// has an officer behind it whatever the record says.
func (o *officer) revokeCertificate(ctx context.Context, serial string, reason int) (certificateView, error) {
	if !gateway.RevocationReasonAllowed(reason) {
		return certificateView{}, apiError(http.StatusBadRequest, "reason %d not accepted; use 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded) or 5 (cessationOfOperation)", reason)
	}
	ctx = context.WithoutCancel(ctx)
	c, err := o.certificate(ctx, serial)
	if err != nil {
		return certificateView{}, err
	}
	revoked, err := o.h.gw.RevokeCertificate(ctx, c, reason)
	var ire *gateway.IssuerRevokeError
	var notRecorded *gateway.RevocationNotRecordedError
	switch {
	case errors.Is(err, gateway.ErrAlreadyRevoked):
		return certificateView{}, apiError(http.StatusConflict, "certificate %s is revoked already", c.Serial)
	case errors.Is(err, gateway.ErrCertificateExpired):
		return certificateView{}, apiError(http.StatusConflict, "certificate %s expired at %s; revoking it has no effect", c.Serial, c.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(err, &ire):
		return certificateView{}, caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: err, Message: err.Error()}
	case errors.As(err, &notRecorded):
		o.audit(ctx, "certificate.revoke", c.Serial, revocationDetail(c, reason, false))
		return certificateView{}, caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err,
			Message: "certificate " + c.Serial + " is revoked at the issuer, but recording it failed; the gateway still shows it " + c.Status}
	case errors.Is(err, gateway.ErrStoredChainUnusable):
		return certificateView{}, caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err, Message: "certificate " + c.Serial + " cannot be read from storage"}
	case err != nil:
		return certificateView{}, storeError(err, "certificate "+c.Serial)
	}
	o.audit(ctx, "certificate.revoke", c.Serial, revocationDetail(revoked, reason, true))
	return viewCertificate(revoked), nil
}

// revocationDetail is a revocation's audit detail; recorded says whether
// storage took it.
func revocationDetail(c *storage.Certificate, reason int, recorded bool) map[string]any {
	d := map[string]any{"reason": reason, "account_id": c.AccountID, "names": c.Names}
	if !recorded {
		d["recorded"] = false
	}
	return d
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
