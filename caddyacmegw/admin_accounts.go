package caddyacmegw

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// accountView is an account as officers see it. CanOrder is what the
// gateway decides at each order and finalize: the account is valid and its
// registration, if it has one, neither disabled, expired nor removed, and
// present when the gateway is preregistered (RegistrationStatus says which:
// "missing" for the last). Reading and revoking work regardless.
type accountView struct {
	ID                 string    `json:"id"`
	Status             string    `json:"status"`
	CanOrder           bool      `json:"can_order"`
	Contact            []string  `json:"contact"`
	RegistrationID     string    `json:"registration_id,omitempty"`
	RegistrationStatus string    `json:"registration_status,omitempty"`
	KeyThumbprint      string    `json:"key_thumbprint"`
	CreatedAt          time.Time `json:"created_at"`
}

func (o *officer) viewAccount(ctx context.Context, a *storage.Account) (accountView, error) {
	v := accountView{
		ID:             a.ID,
		Status:         a.Status,
		Contact:        a.Contact,
		RegistrationID: a.RegistrationID,
		KeyThumbprint:  a.KeyThumbprint,
		CreatedAt:      a.CreatedAt,
	}
	if v.Contact == nil {
		v.Contact = []string{}
	}
	_, block, err := gateway.AccountRegistration(ctx, o.h.store, a, o.h.RegistrationMode, o.h.now())
	if err != nil {
		return accountView{}, storeError(err, "registration "+a.RegistrationID)
	}
	if a.RegistrationID != "" || block != "" {
		v.RegistrationStatus = cmp.Or(block, storage.RegistrationActive)
	}
	v.CanOrder = a.Status == storage.StatusValid && block == ""
	return v, nil
}

func (q *adminRequest) listAccounts() error {
	v, p, err := q.query("registration", "contact", "status")
	if err != nil {
		return err
	}
	f := storage.AccountFilter{RegistrationID: v.Get("registration"), Contact: v.Get("contact"), Status: v.Get("status")}
	out, err := q.officer().listAccounts(q.r.Context(), f, p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (q *adminRequest) getAccount(id string) error {
	v, err := q.officer().getAccount(q.r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}

func (q *adminRequest) deactivateAccount(id string) error {
	v, err := q.officer().deactivateAccount(q.r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, v)
}

// accountStatuses are the statuses accounts are listed by.
var accountStatuses = []string{storage.StatusValid, storage.StatusDeactivated, storage.StatusRevoked}

// listAccounts lists accounts by f. A contact is taken as officers type
// it: an e-mail address without its "mailto:" finds the account all the
// same, whichever front end asks.
func (o *officer) listAccounts(ctx context.Context, f storage.AccountFilter, p page) (accountsPage, error) {
	if err := checkStatus(f.Status, accountStatuses...); err != nil {
		return accountsPage{}, err
	}
	f.Contact = contactURL(f.Contact)
	accts, next, err := o.h.store.ListAccounts(ctx, f, p.cursor, p.limit)
	if err != nil {
		return accountsPage{}, storeError(err, "accounts")
	}
	out := accountsPage{Accounts: []accountView{}, Next: next}
	for _, a := range accts {
		v, err := o.viewAccount(ctx, a)
		if err != nil {
			return accountsPage{}, err
		}
		out.Accounts = append(out.Accounts, v)
	}
	return out, nil
}

// contactURL takes a contact as officers type it: an e-mail address
// without its "mailto:" finds the account all the same.
func contactURL(s string) string {
	if s != "" && !strings.Contains(s, ":") && strings.Contains(s, "@") {
		return "mailto:" + s
	}
	return s
}

func (o *officer) getAccount(ctx context.Context, id string) (accountView, error) {
	a, err := o.h.store.GetAccount(ctx, id)
	if err != nil {
		return accountView{}, storeError(err, "account "+id)
	}
	return o.viewAccount(ctx, a)
}

// deactivateAccount ends an account as RFC 8555 §7.3.6 does for its holder:
// the gateway refuses every later request signed with its key.
func (o *officer) deactivateAccount(ctx context.Context, id string) (accountView, error) {
	ctx = context.WithoutCancel(ctx)
	var a *storage.Account
	var from string
	errAlready := errors.New("already deactivated")
	err := retryConflict(func() error {
		var err error
		if a, err = o.h.store.GetAccount(ctx, id); err != nil {
			return err
		}
		if a.Status != storage.StatusValid {
			return errAlready
		}
		from = a.Status
		if err := gateway.SetAccountStatus(a, storage.StatusDeactivated); err != nil {
			return err
		}
		return o.h.store.UpdateAccount(ctx, a)
	})
	if errors.Is(err, errAlready) {
		return accountView{}, apiError(http.StatusConflict, "account %s is %s already", id, a.Status)
	}
	if err != nil {
		return accountView{}, storeError(err, "account "+id)
	}
	o.audit(ctx, "account.deactivate", id, map[string]any{
		"from":            from,
		"registration_id": a.RegistrationID,
	})
	return o.viewAccount(ctx, a)
}
