package caddyacmegw

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const maxContacts = 10

type accountBody struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
}

type newAccountPayload struct {
	Contact              []string        `json:"contact"`
	TermsOfServiceAgreed bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting   bool            `json:"onlyReturnExisting"`
	ExternalBinding      json.RawMessage `json:"externalAccountBinding"`
}

func (h *Handler) accountURL(r *http.Request, id string) string {
	return h.baseURL(r) + pathAccount + id
}

func (h *Handler) accountResponse(r *http.Request, a *storage.Account, status int) *response {
	url := h.accountURL(r, a.ID)
	return &response{status: status, location: url, body: accountBody{
		Status:  a.Status,
		Contact: a.Contact,
		Orders:  url + "/orders",
	}}
}

// newAccount serves RFC 8555 §7.3.
func (h *Handler) newAccount(w http.ResponseWriter, r *http.Request) (*response, error) {
	req, err := h.readSigned(r, w, h.baseURL(r)+pathNewAccount, byJWK)
	if err != nil {
		return nil, err
	}
	var p newAccountPayload
	if err := decodePayload(req.payload, &p); err != nil {
		return nil, err
	}
	tp, err := thumbprint(req.jwk)
	if err != nil {
		return nil, newProblem("badPublicKey", http.StatusBadRequest, "cannot compute key thumbprint")
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
		return nil, internalError(err)
	case p.OnlyReturnExisting:
		return nil, newProblem("accountDoesNotExist", http.StatusBadRequest, "no account exists with this key")
	}
	if len(p.ExternalBinding) > 0 {
		return nil, malformed("external account binding is not supported by this server")
	}
	if err := checkContacts(p.Contact); err != nil {
		return nil, err
	}
	jwkJSON, err := req.jwk.MarshalJSON()
	if err != nil {
		return nil, internalError(err)
	}
	acct := &storage.Account{
		ID:            newID(),
		KeyThumbprint: tp,
		KeyJWK:        jwkJSON,
		Contact:       p.Contact,
		Status:        storage.StatusValid,
		CreatedAt:     h.now().UTC(),
	}
	if err := h.store.CreateAccount(detach(ctx), acct); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			// Another request created it first with the same key.
			if existing, gerr := h.store.AccountByThumbprint(ctx, tp); gerr == nil {
				return h.accountResponse(r, existing, http.StatusOK), nil
			}
		}
		return nil, internalError(err)
	}
	return h.accountResponse(r, acct, http.StatusCreated), nil
}

// checkContacts accepts mailto: URLs holding one plausible address each.
func checkContacts(contacts []string) error {
	if len(contacts) > maxContacts {
		return newProblem("invalidContact", http.StatusBadRequest, "at most %d contacts", maxContacts)
	}
	for _, c := range contacts {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return newProblem("unsupportedContact", http.StatusBadRequest, "contact %q: only mailto: is supported", c)
		}
		if err := plausibleEmail(addr); err != nil {
			return newProblem("invalidContact", http.StatusBadRequest, "contact %q: %v", c, err)
		}
	}
	return nil
}

func plausibleEmail(addr string) error {
	if addr == "" || len(addr) > 254 || strings.ContainsAny(addr, "?,;<> \t\r\n") {
		return errors.New("not a single plain e-mail address")
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

type accountUpdate struct {
	Contact *[]string `json:"contact"`
	Status  string    `json:"status"`
}

// accountResource serves an account URL (§7.3.2, §7.3.6) and its orders
// list (§7.1.2.1).
func (h *Handler) accountResource(w http.ResponseWriter, r *http.Request, rest string) (*response, error) {
	id, sub, _ := strings.Cut(rest, "/")
	url := h.accountURL(r, id)
	if sub == "orders" {
		url += "/orders"
	} else if sub != "" {
		return nil, notFound("resource")
	}
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
	if sub == "orders" {
		return h.ordersList(r, req)
	}
	if req.postAsGet() {
		return h.accountResponse(r, req.account, http.StatusOK), nil
	}
	var upd accountUpdate
	if err := decodePayload(req.payload, &upd); err != nil {
		return nil, err
	}
	acct := req.account
	switch upd.Status {
	case "", acct.Status:
		// Clients post back the whole account, status included.
	case storage.StatusDeactivated:
		acct.Status = storage.StatusDeactivated
	default:
		return nil, malformed("status may only be changed to deactivated")
	}
	if upd.Contact != nil {
		if err := checkContacts(*upd.Contact); err != nil {
			return nil, err
		}
		acct.Contact = *upd.Contact
	}
	if err := h.store.UpdateAccount(detach(r.Context()), acct); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, newProblem("malformed", http.StatusConflict, "account changed concurrently; retry")
		}
		return nil, internalError(err)
	}
	return h.accountResponse(r, acct, http.StatusOK), nil
}

// decodePayload decodes a JSON payload strictly into v.
func decodePayload(payload []byte, v any) error {
	if len(payload) == 0 {
		return malformed("payload must not be empty")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return malformed("payload: %v", err)
	}
	return nil
}
