package gateway

import (
	"bytes"
	"context"
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
	Crit  json.RawMessage `json:"crit"`
}

// flattenedJWS is a decoded, not yet verified, flattened JWS.
type flattenedJWS struct {
	f         flattened
	hdr       protectedHeader
	signature []byte
}

// readSigned reads, parses and verifies a JWS request for the resource at
// url, redeeming its nonce. Nothing is changed before the signature and
// nonce have been checked.
func (h *Server) readSigned(r *http.Request, w http.ResponseWriter, url string, mode keyMode) (*signedRequest, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, problemWithStatus(ProblemMalformed, http.StatusMethodNotAllowed, "method %s not allowed; use POST", r.Method)
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/jose+json" {
		return nil, problemWithStatus(ProblemMalformed, http.StatusUnsupportedMediaType, "Content-Type must be application/jose+json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJWSBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, problemWithStatus(ProblemMalformed, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxJWSBody)
		}
		return nil, malformed("reading request body: %v", err)
	}
	jws, err := decodeFlattened(body)
	if err != nil {
		return nil, err
	}
	hdr := &jws.hdr
	if hdr.URL != url {
		return nil, unauthorized("JWS url %q does not match the request URL %q", hdr.URL, url)
	}
	if hdr.Nonce == "" {
		return nil, badNonce("JWS has no nonce")
	}
	req := &signedRequest{}
	switch {
	case len(hdr.JWK) > 0 && hdr.KID != "":
		return nil, malformed("JWS must carry either jwk or kid, not both")
	case len(hdr.JWK) > 0:
		if mode == byKID {
			return nil, malformed("this resource needs a kid, not a jwk")
		}
		jwk, err := jws.embeddedKey()
		if err != nil {
			return nil, err
		}
		if err := checkAccountKey(jwk); err != nil {
			return nil, err
		}
		if req.payload, err = jws.verify(jwk.Key); err != nil {
			return nil, err
		}
		req.jwk = jwk
	case hdr.KID != "":
		if mode == byJWK {
			return nil, malformed("this resource needs a jwk, not a kid")
		}
		if req.account, req.payload, err = h.verifyKID(r, jws, hdr.KID); err != nil {
			return nil, err
		}
	default:
		return nil, malformed("JWS has neither jwk nor kid")
	}
	if err := h.nonces.RedeemNonce(r.Context(), hdr.Nonce); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, badNonce("nonce unknown, expired or already used")
		}
		return nil, err
	}
	return req, nil
}

// decodeFlattened decodes a flattened JWS and its protected header, refusing
// every algorithm but the allowed asymmetric ones.
func decodeFlattened(body []byte) (*flattenedJWS, error) {
	jws := &flattenedJWS{}
	f := &jws.f
	if err := json.Unmarshal(body, f); err != nil {
		return nil, malformed("request body is not a JSON object: %v", err)
	}
	if !absentJSON(f.Signatures) || f.Protected == "" || f.Payload == nil {
		return nil, malformed("JWS must use the flattened JSON serialization")
	}
	if !absentJSON(f.Header) {
		return nil, malformed("JWS must not have an unprotected header")
	}
	if err := decodeProtected(f.Protected, &jws.hdr); err != nil {
		return nil, err
	}
	if alg := jws.hdr.Alg; !slices.Contains(signatureAlgorithms, jose.SignatureAlgorithm(alg)) {
		p := problem(ProblemBadSignatureAlgorithm, "JWS algorithm %q is not accepted", alg)
		p.Algorithms = algorithmNames()
		return nil, p
	}
	if f.Signature == "" {
		return nil, malformed("JWS has no signature")
	}
	sig, err := decodeBase64URL(f.Signature)
	if err != nil {
		return nil, malformed("JWS signature is not base64url")
	}
	jws.signature = sig
	return jws, nil
}

// embeddedKey parses the key the JWS carries as jwk, nil when it has none.
// A jwk that is no public key is malformed, as go-jose has it.
func (jws *flattenedJWS) embeddedKey() (*jose.JSONWebKey, error) {
	if len(jws.hdr.JWK) == 0 {
		return nil, nil
	}
	jwk, err := parseJWK(jws.hdr.JWK)
	if err != nil {
		return nil, malformed("JWS cannot be parsed: %v", err)
	}
	if !jwk.IsPublic() {
		return nil, malformed("JWS cannot be parsed: its jwk must be a public key")
	}
	return jwk, nil
}

// verify checks the signature against key and returns the decoded payload.
func (jws *flattenedJWS) verify(key crypto.PublicKey) ([]byte, error) {
	input := make([]byte, 0, len(jws.f.Protected)+1+len(*jws.f.Payload))
	input = append(append(append(input, jws.f.Protected...), '.'), *jws.f.Payload...)
	if verifySignature(key, jws.hdr.Alg, input, jws.signature) != nil {
		return nil, malformed("JWS signature verification failed")
	}
	payload, err := decodeBase64URL(*jws.f.Payload)
	if err != nil {
		return nil, malformed("JWS payload is not base64url")
	}
	return payload, nil
}

// parseFlattened decodes a flattened JWS that carries its key as a jwk, as
// the inner JWS of a key rollover does, and returns that key (nil if none).
func parseFlattened(body []byte) (*flattenedJWS, *jose.JSONWebKey, error) {
	jws, err := decodeFlattened(body)
	if err != nil {
		return nil, nil, err
	}
	jwk, err := jws.embeddedKey()
	if err != nil {
		return nil, nil, err
	}
	return jws, jwk, nil
}

// decodeBase64URL decodes base64url; like go-jose, it tolerates trailing
// padding, which RFC 7515 omits.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
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
	if absentJSON(hdr.JWK) {
		hdr.JWK = nil // kid names the key, or nothing does
	}
	if !absentJSON(hdr.Crit) {
		// RFC 7515 §4.1.11: no extension is understood here.
		return malformed("JWS protected header must not have crit")
	}
	return nil
}

// checkAccountKey accepts public RSA (2048 to 4096 bits), ECDSA P-256/384/521
// and Ed25519 keys.
func checkAccountKey(jwk *jose.JSONWebKey) error {
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return problem(ProblemBadPublicKey, "jwk is not a valid public key")
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return problem(ProblemBadPublicKey, "RSA key of %d bits; 2048 to 4096 accepted", n)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return problem(ProblemBadPublicKey, "key type %T not accepted", jwk.Key)
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

// accountRefresher is a store that keeps accounts in memory and hears of
// other instances' changes a moment after they commit (postgres).
type accountRefresher interface {
	// RefreshAccount reads the account id from the database, not from
	// memory.
	RefreshAccount(ctx context.Context, id string) (*storage.Account, error)
}

// verifyKID verifies a JWS signed by the account that kid names, and
// returns the account and the payload. When the signature does not verify
// against an account held in memory, the account is read once more from the
// database: another instance may have just rolled its key over, and the
// client already signs with the new one.
func (h *Server) verifyKID(r *http.Request, jws *flattenedJWS, kid string) (*storage.Account, []byte, error) {
	acct, err := h.accountByKID(r, kid)
	if err != nil {
		return nil, nil, err
	}
	payload, err := h.verifyBy(jws, acct)
	if err == nil {
		return acct, payload, nil
	}
	refresher, ok := h.store.(accountRefresher)
	if !ok {
		return nil, nil, err
	}
	fresh, ferr := refresher.RefreshAccount(r.Context(), acct.ID)
	if ferr = usableAccount(acct.ID, fresh, ferr); ferr != nil {
		return nil, nil, ferr
	}
	if bytes.Equal(fresh.KeyJWK, acct.KeyJWK) {
		return nil, nil, err
	}
	if payload, err = h.verifyBy(jws, fresh); err != nil {
		return nil, nil, err
	}
	return fresh, payload, nil
}

// verifyBy verifies jws with acct's key.
func (h *Server) verifyBy(jws *flattenedJWS, acct *storage.Account) ([]byte, error) {
	key, err := h.accountKeys.publicKey(acct.KeyJWK)
	if err != nil {
		return nil, err
	}
	return jws.verify(key)
}

// accountByKID loads the valid account a kid URL names.
func (h *Server) accountByKID(r *http.Request, kid string) (*storage.Account, error) {
	prefix := h.resourceURL(r, pathAccount, "")
	id, ok := strings.CutPrefix(kid, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, problem(ProblemAccountDoesNotExist, "kid %q is not an account URL of this server", kid)
	}
	acct, err := h.store.GetAccount(r.Context(), id)
	if err := usableAccount(id, acct, err); err != nil {
		return nil, err
	}
	return acct, nil
}

// usableAccount is the problem, if any, with the account id as a read of it
// returned it: missing, unreadable, or not valid.
func usableAccount(id string, acct *storage.Account, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return problem(ProblemAccountDoesNotExist, "account %s does not exist", id)
	case err != nil:
		return err
	case acct.Status != storage.StatusValid:
		return unauthorized("account is %s", acct.Status)
	}
	return nil
}
