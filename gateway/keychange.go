package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

type keyChangePayload struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// keyChange serves account key rollover (RFC 8555 §7.3.5): the outer JWS is
// signed by the old key, the inner one, its payload, by the new key.
func (h *Server) keyChange(w http.ResponseWriter, r *http.Request) (*response, error) {
	url := h.resourceURL(r, pathKeyChange)
	outer, err := h.readSigned(r, w, url, byKID)
	if err != nil {
		return nil, err
	}
	inner, newKey, err := parseFlattened(outer.payload)
	if err != nil {
		return nil, err
	}
	hdr := &inner.hdr
	switch {
	case newKey == nil || hdr.KID != "":
		return nil, malformed("inner JWS must carry the new key as jwk and no kid")
	case hdr.URL != url:
		return nil, malformed("inner JWS url must equal the outer one")
	case hdr.Nonce != "":
		return nil, malformed("inner JWS must not carry a nonce")
	}
	if err := checkAccountKey(newKey); err != nil {
		return nil, err
	}
	payload, err := inner.verify(newKey.Key)
	if err != nil {
		return nil, malformed("inner JWS signature verification failed")
	}
	var p keyChangePayload
	if err := decodePayload(payload, &p); err != nil {
		return nil, err
	}
	acct := outer.account
	if _, err := h.accountRegistration(r.Context(), acct); err != nil {
		return nil, err
	}
	if p.Account != h.accountURL(r, acct.ID) {
		return nil, unauthorized("inner payload names another account")
	}
	if err := sameKey(p.OldKey, acct.KeyJWK); err != nil {
		return nil, err
	}
	tp, err := thumbprint(newKey)
	if err != nil {
		return nil, problem(ProblemBadPublicKey, "cannot compute key thumbprint")
	}
	if other, err := h.store.AccountByThumbprint(r.Context(), tp); err == nil {
		p := problemWithStatus(ProblemMalformed, http.StatusConflict, "the new key is already in use by an account")
		p.location = h.accountURL(r, other.ID)
		return nil, p
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	jwkJSON, err := newKey.MarshalJSON()
	if err != nil {
		return nil, err
	}
	acct.KeyThumbprint, acct.KeyJWK = tp, jwkJSON
	if err := h.store.UpdateAccount(detach(r.Context()), acct); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, problemWithStatus(ProblemMalformed, http.StatusConflict, "the new key is in use, or the account changed concurrently")
		}
		return nil, err
	}
	return h.accountResponse(r, acct, http.StatusOK), nil
}

// sameKey checks that oldKey, as sent, is the account's current key.
func sameKey(oldKey json.RawMessage, current []byte) error {
	var sent jose.JSONWebKey
	if len(oldKey) == 0 || sent.UnmarshalJSON(oldKey) != nil {
		return malformed("inner payload oldKey is not a JWK")
	}
	cur, err := parseJWK(current)
	if err != nil {
		return err
	}
	a, errA := thumbprint(&sent)
	b, errB := thumbprint(cur)
	if errA != nil || errB != nil || a != b {
		return unauthorized("oldKey is not the account's current key")
	}
	return nil
}
