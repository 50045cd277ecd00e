package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

type challengeBody struct {
	Type      string   `json:"type"`
	URL       string   `json:"url"`
	Status    string   `json:"status"`
	Token     string   `json:"token"`
	Validated string   `json:"validated,omitempty"`
	Error     *Problem `json:"error,omitempty"`
}

type authzBody struct {
	Identifier identifier      `json:"identifier"`
	Status     string          `json:"status"`
	Expires    string          `json:"expires"`
	Challenges []challengeBody `json:"challenges"`
	Wildcard   bool            `json:"wildcard,omitempty"`
}

func (h *Server) authzURL(r *http.Request, id string) string {
	return h.resourceURL(r, pathAuthz, id)
}

func (h *Server) challengeURL(r *http.Request, authzID, typ string) string {
	return h.resourceURL(r, pathChallenge, authzID, typ)
}

func (h *Server) challengeBody(r *http.Request, a *storage.Authorization, c *storage.Challenge) challengeBody {
	b := challengeBody{
		Type:   c.Type,
		URL:    h.challengeURL(r, a.ID, c.Type),
		Status: c.Status,
		Token:  c.Token,
		Error:  storedProblem(c.Error),
	}
	if !c.Validated.IsZero() {
		b.Validated = c.Validated.UTC().Format(time.RFC3339)
	}
	return b
}

func (h *Server) authzResponse(r *http.Request, a *storage.Authorization) *response {
	body := authzBody{
		Identifier: a.Identifier,
		Status:     authzStatus(a, h.now()),
		Expires:    a.Expires.UTC().Format(time.RFC3339),
		Wildcard:   a.Wildcard,
	}
	for i := range a.Challenges {
		body.Challenges = append(body.Challenges, h.challengeBody(r, a, &a.Challenges[i]))
	}
	return &response{status: http.StatusOK, body: body}
}

// loadAuthz returns an authorization of the request's account.
func (h *Server) loadAuthz(r *http.Request, req *signedRequest, id string) (*storage.Authorization, error) {
	a, err := h.store.GetAuthz(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("authorization")
	}
	if err != nil {
		return nil, err
	}
	if a.AccountID != req.account.ID {
		return nil, unauthorized("authorization belongs to another account")
	}
	return a, nil
}

// authzResource serves an authorization (§7.5) and its deactivation (§7.5.2).
func (h *Server) authzResource(w http.ResponseWriter, r *http.Request) (*response, error) {
	id := r.PathValue("id")
	req, err := h.readSigned(r, w, h.authzURL(r, id), byKID)
	if err != nil {
		return nil, err
	}
	a, err := h.loadAuthz(r, req, id)
	if err != nil {
		return nil, err
	}
	if req.postAsGet() {
		h.resumeValidation(r, req.account, a)
		return h.authzResponse(r, a), nil
	}
	var upd struct {
		Status string `json:"status"`
	}
	if err := decodePayload(req.payload, &upd); err != nil {
		return nil, err
	}
	if upd.Status != storage.StatusDeactivated {
		return nil, malformed("an authorization may only be changed to deactivated")
	}
	if _, err := h.accountRegistration(r.Context(), req.account); err != nil {
		return nil, err
	}
	wasPending := authzStatus(a, h.now()) == storage.StatusPending
	if err := deactivateAuthz(a, h.now()); err != nil {
		return nil, err
	}
	if err := h.store.UpdateAuthz(detach(r.Context()), a); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, problemWithStatus(ProblemMalformed, http.StatusConflict, "authorization changed concurrently; retry")
		}
		return nil, err
	}
	if wasPending {
		h.authzDecided(detach(r.Context()), a)
	}
	return h.authzResponse(r, a), nil
}
