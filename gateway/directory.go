package gateway

import "net/http"

type directoryMeta struct {
	TermsOfService          string   `json:"termsOfService,omitempty"`
	Website                 string   `json:"website,omitempty"`
	ExternalAccountRequired bool     `json:"externalAccountRequired"`
	CAAIdentities           []string `json:"caaIdentities,omitempty"`
	// Profiles is name to description (draft-ietf-acme-profiles).
	Profiles map[string]string `json:"profiles,omitempty"`
}

type directoryBody struct {
	NewNonce   string        `json:"newNonce"`
	NewAccount string        `json:"newAccount"`
	NewOrder   string        `json:"newOrder"`
	RevokeCert string        `json:"revokeCert"`
	KeyChange  string        `json:"keyChange"`
	Meta       directoryMeta `json:"meta"`
}

// directory serves RFC 8555 §7.1.1.
func (h *Server) directory(w http.ResponseWriter, r *http.Request) (*response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return nil, problemWithStatus(ProblemMalformed, http.StatusMethodNotAllowed, "use GET for the directory")
	}
	return &response{status: http.StatusOK, body: directoryBody{
		NewNonce:   h.resourceURL(r, pathNewNonce),
		NewAccount: h.resourceURL(r, pathNewAccount),
		NewOrder:   h.resourceURL(r, pathNewOrder),
		RevokeCert: h.resourceURL(r, pathRevoke),
		KeyChange:  h.resourceURL(r, pathKeyChange),
		Meta: directoryMeta{
			TermsOfService:          h.cfg.TermsOfService,
			Website:                 h.cfg.Website,
			ExternalAccountRequired: h.cfg.RegistrationMode == RegistrationPreregistered,
			CAAIdentities:           h.cfg.CAAIdentities,
			Profiles:                h.directoryProfiles(),
		},
	}}, nil
}

// newNonce serves RFC 8555 §7.2: the nonce itself rides on every response.
func (h *Server) newNonce(w http.ResponseWriter, r *http.Request) (*response, error) {
	switch r.Method {
	case http.MethodHead:
		return &response{status: http.StatusOK}, nil
	case http.MethodGet:
		return &response{status: http.StatusNoContent}, nil
	}
	w.Header().Set("Allow", "GET, HEAD")
	return nil, problemWithStatus(ProblemMalformed, http.StatusMethodNotAllowed, "use HEAD or GET for newNonce")
}
