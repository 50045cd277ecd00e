package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// defaultRenewalInfoRetryAfter is how long clients are told to wait before
// asking for a certificate's renewal information again.
const defaultRenewalInfoRetryAfter = 6 * time.Hour

type suggestedWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type renewalInfoBody struct {
	SuggestedWindow suggestedWindow `json:"suggestedWindow"`
	ExplanationURL  string          `json:"explanationURL,omitempty"`
}

// renewalInfoURL is the directory's renewalInfo: the resource below which
// each certID is served.
func (h *Server) renewalInfoURL(r *http.Request) string {
	return h.resourceURL(r, pathRenewalInfoBase)
}

// renewalInfo serves RFC 9773 §4.2: GET {renewalInfo}/{certID}, unsigned.
func (h *Server) renewalInfo(w http.ResponseWriter, r *http.Request) (*response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return nil, problemWithStatus(ProblemMalformed, http.StatusMethodNotAllowed, "use GET for renewal information")
	}
	id, err := parseCertID(r.PathValue("certID"))
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	cert, err := h.certificateByID(ctx, id)
	if err != nil {
		return nil, err
	}
	win, err := h.renewalWindow(ctx, cert)
	if err != nil {
		return nil, err
	}
	return &response{
		status:     http.StatusOK,
		retryAfter: max(1, int(h.cfg.RenewalInfoRetryAfter/time.Second)),
		body: renewalInfoBody{
			SuggestedWindow: suggestedWindow{Start: win.Start, End: win.End},
			ExplanationURL:  win.ExplanationURL,
		},
	}, nil
}

// certificateByID is the certificate a certID names: known by its serial,
// and issued under the key the certID's AKI names. Any other is a 404
// problem.
func (h *Server) certificateByID(ctx context.Context, id certID) (*storage.Certificate, error) {
	cert, err := h.store.GetCertificate(ctx, id.serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("certificate")
	}
	if err != nil {
		return nil, err
	}
	leaf, err := storedLeaf(cert)
	if err != nil {
		return nil, internalError(err)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, id.aki) {
		return nil, notFound("certificate") // that serial, from another issuer key
	}
	return cert, nil
}

// storedLeaf parses the leaf of a stored certificate's chain, its first
// block; the intermediates are not read.
func storedLeaf(c *storage.Certificate) (*x509.Certificate, error) {
	block, _ := pem.Decode(c.ChainPEM)
	if block == nil {
		return nil, fmt.Errorf("%w: %s", ErrStoredChainUnusable, c.Serial)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrStoredChainUnusable, c.Serial, err)
	}
	return leaf, nil
}

// renewalWindow is a certificate's suggested window: its own, or the one
// an officer's rule gave it. The rules are read from storage on every
// request, so that all instances sharing it answer alike at once.
func (h *Server) renewalWindow(ctx context.Context, c *storage.Certificate) (renewalWindow, error) {
	kid := ""
	switch acct, err := h.store.GetAccount(ctx, c.AccountID); {
	case err == nil:
		kid = acct.RegistrationID
	case !errors.Is(err, storage.ErrNotFound):
		return renewalWindow{}, err
	}
	rules, err := h.store.RenewalRulesFor(ctx, renewalScopes(c, kid))
	if err != nil {
		return renewalWindow{}, err
	}
	return ruleWindow(c, rules), nil
}

// RenewalInfo is what the gateway answers for a certificate's renewal
// information, for officers: its certID and its suggested window.
type RenewalInfo struct {
	CertID         string    `json:"cert_id"`
	WindowStart    time.Time `json:"window_start"`
	WindowEnd      time.Time `json:"window_end"`
	ExplanationURL string    `json:"explanation_url,omitempty"`
}

// RenewalInfoOf is the renewal information of a stored certificate, as a
// client asking for it now gets it.
func (h *Server) RenewalInfoOf(ctx context.Context, c *storage.Certificate) (RenewalInfo, error) {
	leaf, err := storedLeaf(c)
	if err != nil {
		return RenewalInfo{}, err
	}
	win, err := h.renewalWindow(ctx, c)
	if err != nil {
		return RenewalInfo{}, err
	}
	return RenewalInfo{CertID: certIDOf(leaf), WindowStart: win.Start, WindowEnd: win.End, ExplanationURL: win.ExplanationURL}, nil
}
