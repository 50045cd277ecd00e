package caddyacmegw

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// maxJWSBody bounds a request body; the largest legitimate one is a
// finalize with an RSA-4096 CSR, a few kilobytes.
const maxJWSBody = 64 << 10

// signatureAlgorithms are the JWS algorithms accepted for account keys.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// algorithmNames is signatureAlgorithms as strings, for problem documents.
func algorithmNames() []string {
	names := make([]string, len(signatureAlgorithms))
	for i, a := range signatureAlgorithms {
		names[i] = string(a)
	}
	return names
}

// keyMode says how a request must identify its signer.
type keyMode int

const (
	byKID    keyMode = iota // an existing account's URL in "kid"
	byJWK                   // a public key in "jwk" (newAccount)
	byEither                // revokeCert: the account, or the certificate's key
)

// signedRequest is a verified JWS request.
type signedRequest struct {
	payload []byte
	// account is the signer when the JWS named one by kid.
	account *storage.Account
	// jwk is the signer's key when the JWS carried it.
	jwk *jose.JSONWebKey
	// jws is kept for key rollover, whose payload is itself a JWS.
	jws *jose.JSONWebSignature
}

// postAsGet reports whether the payload is empty (RFC 8555 §6.3).
func (s *signedRequest) postAsGet() bool { return len(s.payload) == 0 }

// flattened is the only JWS serialization RFC 8555 §6.2 allows.
type flattened struct {
	Protected  string          `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  string          `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

type protectedHeader struct {
	Alg   string          `json:"alg"`
	Nonce string          `json:"nonce"`
	URL   string          `json:"url"`
	KID   string          `json:"kid"`
	JWK   json.RawMessage `json:"jwk"`
}

// readSigned reads, parses and verifies a JWS request for the resource at
// url, redeeming its nonce. Nothing is changed before the signature and
// nonce have been checked.
func (h *Handler) readSigned(r *http.Request, w http.ResponseWriter, url string, mode keyMode) (*signedRequest, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, newProblem("malformed", http.StatusMethodNotAllowed, "method %s not allowed; use POST", r.Method)
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/jose+json" {
		return nil, newProblem("malformed", http.StatusUnsupportedMediaType, "Content-Type must be application/jose+json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJWSBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newProblem("malformed", http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxJWSBody)
		}
		return nil, malformed("reading request body: %v", err)
	}
	jws, hdr, err := parseFlattened(body)
	if err != nil {
		return nil, err
	}
	if hdr.URL != url {
		return nil, unauthorized("JWS url %q does not match the request URL %q", hdr.URL, url)
	}
	if hdr.Nonce == "" {
		return nil, badNonce("JWS has no nonce")
	}
	req := &signedRequest{jws: jws}
	var key any
	switch {
	case len(hdr.JWK) > 0 && hdr.KID != "":
		return nil, malformed("JWS must carry either jwk or kid, not both")
	case len(hdr.JWK) > 0:
		if mode == byKID {
			return nil, malformed("this resource needs a kid, not a jwk")
		}
		jwk := jws.Signatures[0].Protected.JSONWebKey
		if err := checkAccountKey(jwk); err != nil {
			return nil, err
		}
		req.jwk, key = jwk, jwk
	case hdr.KID != "":
		if mode == byJWK {
			return nil, malformed("this resource needs a jwk, not a kid")
		}
		acct, err := h.accountByKID(r, hdr.KID)
		if err != nil {
			return nil, err
		}
		k, err := parseJWK(acct.KeyJWK)
		if err != nil {
			return nil, internalError(err)
		}
		req.account, key = acct, k
	default:
		return nil, malformed("JWS has neither jwk nor kid")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, malformed("JWS signature verification failed")
	}
	if err := h.nonces.RedeemNonce(r.Context(), hdr.Nonce); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, badNonce("nonce unknown, expired or already used")
		}
		return nil, internalError(err)
	}
	req.payload = payload
	return req, nil
}

// parseFlattened decodes a flattened JWS and its protected header, refusing
// every algorithm but the allowed asymmetric ones.
func parseFlattened(body []byte) (*jose.JSONWebSignature, *protectedHeader, error) {
	var f flattened
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, nil, malformed("request body is not a JSON object: %v", err)
	}
	if len(f.Signatures) > 0 || f.Protected == "" || f.Payload == nil {
		return nil, nil, malformed("JWS must use the flattened JSON serialization")
	}
	if len(f.Header) > 0 {
		return nil, nil, malformed("JWS must not have an unprotected header")
	}
	var hdr protectedHeader
	if err := decodeProtected(f.Protected, &hdr); err != nil {
		return nil, nil, err
	}
	if !slices.Contains(signatureAlgorithms, jose.SignatureAlgorithm(hdr.Alg)) {
		p := newProblem("badSignatureAlgorithm", http.StatusBadRequest, "JWS algorithm %q is not accepted", hdr.Alg)
		p.Algorithms = algorithmNames()
		return nil, nil, p
	}
	if f.Signature == "" {
		return nil, nil, malformed("JWS has no signature")
	}
	jws, err := jose.ParseSignedJSON(string(body), signatureAlgorithms)
	if err != nil {
		return nil, nil, malformed("JWS cannot be parsed: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, malformed("JWS must have exactly one signature")
	}
	return jws, &hdr, nil
}

// decodeProtected decodes a JWS protected header.
func decodeProtected(protected string, hdr *protectedHeader) error {
	raw, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return malformed("JWS protected header is not base64url")
	}
	if err := json.Unmarshal(raw, hdr); err != nil {
		return malformed("JWS protected header is not JSON")
	}
	return nil
}

// checkAccountKey accepts public RSA (2048 to 4096 bits), ECDSA P-256/384/521
// and Ed25519 keys.
func checkAccountKey(jwk *jose.JSONWebKey) error {
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return newProblem("badPublicKey", http.StatusBadRequest, "jwk is not a valid public key")
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return newProblem("badPublicKey", http.StatusBadRequest, "RSA key of %d bits; 2048 to 4096 accepted", n)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return newProblem("badPublicKey", http.StatusBadRequest, "key type %T not accepted", jwk.Key)
	}
	return nil
}

func parseJWK(b []byte) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return &k, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url.
func thumbprint(jwk *jose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// accountByKID loads the valid account a kid URL names.
func (h *Handler) accountByKID(r *http.Request, kid string) (*storage.Account, error) {
	prefix := h.baseURL(r) + "/account/"
	id, ok := strings.CutPrefix(kid, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, newProblem("accountDoesNotExist", http.StatusBadRequest, "kid %q is not an account URL of this server", kid)
	}
	acct, err := h.store.GetAccount(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, newProblem("accountDoesNotExist", http.StatusBadRequest, "account %s does not exist", id)
	}
	if err != nil {
		return nil, internalError(err)
	}
	if acct.Status != storage.StatusValid {
		return nil, unauthorized("account is %s", acct.Status)
	}
	return acct, nil
}
