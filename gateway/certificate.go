package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// certResource serves certificate download (RFC 8555 §7.4.2) to the
// account that ordered it, as a PEM chain, leaf first.
func (h *Server) certResource(w http.ResponseWriter, r *http.Request) (*response, error) {
	serial := r.PathValue("id")
	req, err := h.readSigned(r, w, h.resourceURL(r, pathCertificate, serial), byKID)
	if err != nil {
		return nil, err
	}
	if !req.postAsGet() {
		return nil, malformed("a certificate is read with POST-as-GET (empty payload)")
	}
	cert, err := h.store.GetCertificate(r.Context(), serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("certificate")
	}
	if err != nil {
		return nil, err
	}
	if cert.AccountID != req.account.ID {
		return nil, unauthorized("certificate belongs to another account")
	}
	return &response{
		status:      http.StatusOK,
		contentType: "application/pem-certificate-chain",
		raw:         cert.ChainPEM,
	}, nil
}

// changeCertificate applies change to a copy of c, as read from storage,
// and writes it by compare-and-swap; when another change won, it reads
// the certificate again and tries once more. An error from change stops
// it and is returned. It returns the certificate as written.
func (h *Server) changeCertificate(ctx context.Context, c *storage.Certificate, change func(*storage.Certificate) error) (*storage.Certificate, error) {
	for attempt := 0; ; attempt++ {
		next := *c // c stays as stored until the write succeeds
		if err := change(&next); err != nil {
			return nil, err
		}
		err := h.store.UpdateCertificate(ctx, &next)
		if err == nil {
			return &next, nil
		}
		if !errors.Is(err, storage.ErrConflict) || attempt > 0 {
			return nil, err
		}
		if c, err = h.store.GetCertificate(ctx, c.Serial); err != nil {
			return nil, err
		}
	}
}
