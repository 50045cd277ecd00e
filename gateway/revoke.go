package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// revocationReasons are the CRL reason codes a client may give (RFC 5280
// §5.3.1): unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation.
var revocationReasons = map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true}

// revokePayload is a revocation request; a reason not given is 0,
// unspecified (payload.go).
type revokePayload struct {
	Certificate string `json:"certificate"`
	Reason      int    `json:"reason"`
}

// revokeCert serves RFC 8555 §7.6. The signer is the issuing account, an
// account holding valid authorizations for every name, or the
// certificate's own key.
func (h *Server) revokeCert(w http.ResponseWriter, r *http.Request) (*response, error) {
	req, err := h.readSigned(r, w, h.resourceURL(r, pathRevoke), byEither)
	if err != nil {
		return nil, err
	}
	var p revokePayload
	if err := decodePayload(req.payload, &p); err != nil {
		return nil, err
	}
	reason := p.Reason
	if !revocationReasons[reason] {
		return nil, problem(ProblemBadRevocationReason, "reason %d not accepted; use 0, 1, 3, 4 or 5", reason)
	}
	der, err := base64.RawURLEncoding.DecodeString(p.Certificate)
	if err != nil {
		return nil, malformed("certificate is not base64url")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, malformed("certificate cannot be parsed")
	}
	ctx := r.Context()
	cert, err := h.store.GetCertificate(ctx, leaf.SerialNumber.Text(16))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("certificate issued by this server")
	}
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(cert.ChainPEM); block == nil || !bytes.Equal(block.Bytes, der) {
		return nil, notFound("certificate issued by this server")
	}
	if err := h.mayRevoke(ctx, req, cert, leaf); err != nil {
		return nil, err
	}
	// leaf is the stored leaf: its DER is the chain's first block.
	if _, err := h.revoke(detach(ctx), cert, leaf, reason); err != nil {
		return nil, err // asProblem maps RevokeCertificate's errors
	}
	return &response{status: http.StatusOK}, nil
}

// Why RevokeCertificate refused; match with errors.Is.
var (
	ErrAlreadyRevoked      = errors.New("certificate is already revoked")
	ErrCertificateExpired  = errors.New("certificate has expired; revoking it has no effect")
	ErrRevocationReason    = errors.New("revocation reason not accepted; use 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded) or 5 (cessationOfOperation)")
	ErrStoredChainUnusable = errors.New("stored certificate chain holds no parsable leaf")
)

// IssuerRevokeError is the issuer's refusal to revoke; nothing was
// recorded.
type IssuerRevokeError struct{ Err error }

func (e *IssuerRevokeError) Error() string {
	return "the issuer did not revoke the certificate: " + e.Err.Error()
}
func (e *IssuerRevokeError) Unwrap() error { return e.Err }

// RevocationNotRecordedError is a revocation the issuer made that storage
// did not take, after retrying: the CA has revoked the certificate, the
// gateway's record still shows it as before.
type RevocationNotRecordedError struct{ Err error }

func (e *RevocationNotRecordedError) Error() string {
	return "the issuer revoked the certificate but recording it failed: " + e.Err.Error()
}
func (e *RevocationNotRecordedError) Unwrap() error { return e.Err }

// RevokeCertificate revokes cert, as read from storage, at the issuer and
// then records it: the one revocation of the gateway, for ACME clients and
// for officers alike, whoever was found allowed to ask. The record is
// written only once the issuer confirmed, so that it never claims more
// than the CA did; it is a compare-and-swap, read again when it lost to
// another change and retried through a failing store as an issued
// certificate is (storeBackoff). A revocation recorded meanwhile is
// ErrAlreadyRevoked; one not recorded in the end is a
// *RevocationNotRecordedError. It returns the certificate as recorded.
func (h *Server) RevokeCertificate(ctx context.Context, cert *storage.Certificate, reason int) (*storage.Certificate, error) {
	if !revocationReasons[reason] {
		return nil, ErrRevocationReason
	}
	leaf, err := storedLeaf(cert)
	if err != nil {
		return nil, err
	}
	return h.revoke(ctx, cert, leaf, reason)
}

// revoke is RevokeCertificate with cert's leaf parsed and its reason
// checked.
func (h *Server) revoke(ctx context.Context, cert *storage.Certificate, leaf *x509.Certificate, reason int) (*storage.Certificate, error) {
	if cert.Status == storage.StatusRevoked {
		return nil, ErrAlreadyRevoked
	}
	if !h.now().Before(cert.NotAfter) {
		return nil, ErrCertificateExpired
	}
	if err := h.issuer.Revoke(ctx, leaf, reason); err != nil {
		return nil, &IssuerRevokeError{Err: err}
	}
	// In microseconds, as every backend keeps it, so that a write that
	// reported failure but committed is recognised as this one.
	revokedAt := h.now().UTC().Truncate(time.Microsecond)
	var err error
	for _, backoff := range storeBackoff {
		if err = sleep(ctx, backoff); err != nil {
			break
		}
		var revoked *storage.Certificate
		revoked, err = h.changeCertificate(ctx, cert, func(c *storage.Certificate) error {
			if c.Status == storage.StatusRevoked && (!c.RevokedAt.Equal(revokedAt) || c.RevocationReason != reason) {
				return ErrAlreadyRevoked
			}
			CertificateRevoked(c, reason, revokedAt)
			return nil
		})
		if err == nil || errors.Is(err, ErrAlreadyRevoked) {
			return revoked, err
		}
	}
	h.logger.Error("the issuer revoked a certificate but recording it failed",
		zap.String("serial", cert.Serial), zap.Error(err))
	return nil, &RevocationNotRecordedError{Err: err}
}

// mayRevoke checks that the signer may revoke cert.
func (h *Server) mayRevoke(ctx context.Context, req *signedRequest, cert *storage.Certificate, leaf *x509.Certificate) error {
	if req.jwk != nil {
		a, errA := thumbprint(req.jwk)
		b, errB := thumbprint(&jose.JSONWebKey{Key: leaf.PublicKey})
		if errA != nil || errB != nil || a != b {
			return unauthorized("JWS key is not the certificate's key")
		}
		return nil
	}
	if req.account.ID == cert.AccountID {
		return nil
	}
	if len(cert.Names) == 0 {
		return unauthorized("only the issuing account or the certificate's key may revoke a certificate without names")
	}
	now := h.now()
	for _, n := range cert.Names {
		name, wildcard := splitWildcard(n)
		ident := identifier{Type: "dns", Value: name}
		if _, err := netip.ParseAddr(n); err == nil {
			ident.Type = "ip"
		}
		_, err := h.store.ValidAuthz(ctx, req.account.ID, ident, wildcard, now)
		if errors.Is(err, storage.ErrNotFound) {
			return unauthorized("account holds no valid authorization for %s", n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RevocationReasonAllowed reports whether reason is one a revocation may
// give, by a client or an officer.
func RevocationReasonAllowed(reason int) bool { return revocationReasons[reason] }
