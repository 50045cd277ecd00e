package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const maxContacts = 10

type accountBody struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
}

// newAccountPayload is a newAccount request; payload.go says what its
// fields mean when empty.
type newAccountPayload struct {
	Contact              []string        `json:"contact"`
	TermsOfServiceAgreed bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting   bool            `json:"onlyReturnExisting"`
	ExternalBinding      json.RawMessage `json:"externalAccountBinding"`
}

func (h *Server) accountURL(r *http.Request, id string) string {
	return h.resourceURL(r, pathAccount, id)
}

func (h *Server) accountResponse(r *http.Request, a *storage.Account, status int) *response {
	url := h.accountURL(r, a.ID)
	return &response{status: status, location: url, body: accountBody{
		Status:  a.Status,
		Contact: a.Contact,
		Orders:  h.resourceURL(r, pathAccountOrders, a.ID),
	}}
}

// newAccount serves RFC 8555 §7.3.
func (h *Server) newAccount(w http.ResponseWriter, r *http.Request) (*response, error) {
	url := h.resourceURL(r, pathNewAccount)
	req, err := h.readSigned(r, w, url, byJWK)
	if err != nil {
		return nil, err
	}
	var p newAccountPayload
	if err := decodePayload(req.payload, &p); err != nil {
		return nil, err
	}
	tp, err := thumbprint(req.jwk)
	if err != nil {
		return nil, problem(ProblemBadPublicKey, "cannot compute key thumbprint")
	}
	ctx := r.Context()
	existing, err := h.store.AccountByThumbprint(ctx, tp)
	switch {
	case err == nil:
		if existing.Status != storage.StatusValid {
			return nil, unauthorized("account is %s", existing.Status)
		}
		return h.accountResponse(r, existing, http.StatusOK), nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	case p.OnlyReturnExisting:
		return nil, problem(ProblemAccountDoesNotExist, "no account exists with this key")
	}
	if err := checkContacts(p.Contact); err != nil {
		return nil, err
	}
	if len(p.Contact) == 0 {
		p.Contact = nil
	}
	var reg *storage.Registration
	switch {
	case !absentJSON(p.ExternalBinding):
		if reg, err = h.checkBinding(ctx, p.ExternalBinding, url, req.jwk); err != nil {
			return nil, err
		}
	case h.cfg.RegistrationMode == RegistrationPreregistered:
		return nil, externalAccountRequired()
	}
	jwkJSON, err := req.jwk.MarshalJSON()
	if err != nil {
		return nil, err
	}
	giveBack, err := h.takeAccount(r, reg)
	if err != nil {
		return nil, err
	}
	acct := &storage.Account{
		ID:            NewID(),
		KeyThumbprint: tp,
		KeyJWK:        jwkJSON,
		Contact:       p.Contact,
		Status:        storage.StatusValid,
		CreatedAt:     h.now().UTC(),
	}
	if err := h.createAccount(detach(ctx), acct, reg); err != nil {
		giveBack()
		if errors.Is(err, storage.ErrConflict) {
			// Another request created it first with the same key.
			if existing, gerr := h.store.AccountByThumbprint(ctx, tp); gerr == nil {
				return h.accountResponse(r, existing, http.StatusOK), nil
			}
			if reg != nil {
				return nil, unauthorized("external account binding key id is already used by another account")
			}
		}
		if reg != nil && errors.Is(err, storage.ErrNotFound) {
			return nil, unauthorized("external account binding key id is unknown")
		}
		return nil, err
	}
	return h.accountResponse(r, acct, http.StatusCreated), nil
}

// createAccount stores a new account, bound to reg when there is one: of
// two keys racing for one registration, exactly one gets an account.
func (h *Server) createAccount(ctx context.Context, acct *storage.Account, reg *storage.Registration) error {
	if reg == nil {
		return h.store.CreateAccount(ctx, acct)
	}
	acct.RegistrationID = reg.KeyID
	reg.AccountID = acct.ID
	reg.UpdatedAt = acct.CreatedAt
	return h.store.BindAccount(ctx, acct, reg)
}

// checkContacts accepts mailto: URLs holding one plausible address each.
func checkContacts(contacts []string) error {
	if len(contacts) > maxContacts {
		return problem(ProblemInvalidContact, "at most %d contacts", maxContacts)
	}
	for _, c := range contacts {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return problem(ProblemUnsupportedContact, "contact %q: only mailto: is supported", c)
		}
		if err := PlausibleEmail(addr); err != nil {
			return problem(ProblemInvalidContact, "contact %q: %v", c, err)
		}
	}
	return nil
}

// PlausibleEmail accepts one plain e-mail address (no display name, no
// list, no control or invisible characters) at a fully qualified domain.
func PlausibleEmail(addr string) error {
	if addr == "" || len(addr) > 254 || strings.ContainsAny(addr, "?,;<> \t\r\n") {
		return errors.New("not a single plain e-mail address")
	}
	// Control, format (bidi overrides, zero-width joiners) and separator
	// characters can make an address read as another one.
	if !utf8.ValidString(addr) || strings.IndexFunc(addr, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return errors.New("e-mail address holds control or invisible characters")
	}
	parsed, err := mail.ParseAddress(addr)
	if err != nil || parsed.Address != addr || parsed.Name != "" {
		return errors.New("not a valid e-mail address")
	}
	at := strings.LastIndexByte(addr, '@')
	domain := addr[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return errors.New("e-mail domain is not a fully qualified name")
	}
	return nil
}

// accountUpdate is an update of an account: a nil Contact leaves the
// contacts, an empty one removes them (RFC 8555 §7.3.2).
type accountUpdate struct {
	Contact *[]string `json:"contact"`
	Status  string    `json:"status"`
}

// accountOrders serves an account's orders list (§7.1.2.1).
func (h *Server) accountOrders(w http.ResponseWriter, r *http.Request) (*response, error) {
	req, err := h.readOwnAccount(w, r, pathAccountOrders)
	if err != nil {
		return nil, err
	}
	return h.ordersList(r, req)
}

// readOwnAccount reads a signed request to a resource of pattern that
// belongs to the account {id}, by that account's key.
func (h *Server) readOwnAccount(w http.ResponseWriter, r *http.Request, pattern string) (*signedRequest, error) {
	id := r.PathValue("id")
	url := h.resourceURL(r, pattern, id)
	if r.URL.RawQuery != "" {
		url += "?" + r.URL.RawQuery
	}
	req, err := h.readSigned(r, w, url, byKID)
	if err != nil {
		return nil, err
	}
	if req.account.ID != id {
		return nil, unauthorized("account may only be read or changed by its own key")
	}
	return req, nil
}

// accountResource serves an account URL (§7.3.2, §7.3.6).
func (h *Server) accountResource(w http.ResponseWriter, r *http.Request) (*response, error) {
	req, err := h.readOwnAccount(w, r, pathAccount)
	if err != nil {
		return nil, err
	}
	if req.postAsGet() {
		return h.accountResponse(r, req.account, http.StatusOK), nil
	}
	var upd accountUpdate
	if err := decodePayload(req.payload, &upd); err != nil {
		return nil, err
	}
	if _, err := h.accountRegistration(r.Context(), req.account); err != nil {
		return nil, err
	}
	acct := req.account
	if err := SetAccountStatus(acct, upd.Status); err != nil {
		return nil, err
	}
	if upd.Contact != nil {
		if err := checkContacts(*upd.Contact); err != nil {
			return nil, err
		}
		acct.Contact = *upd.Contact
	}
	if err := h.store.UpdateAccount(detach(r.Context()), acct); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, problemWithStatus(ProblemMalformed, http.StatusConflict, "account changed concurrently; retry")
		}
		return nil, err
	}
	return h.accountResponse(r, acct, http.StatusOK), nil
}
