package caddyacmegw

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// accountView is an account as officers see it.
type accountView struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	Contact        []string  `json:"contact"`
	RegistrationID string    `json:"registration_id,omitempty"`
	KeyThumbprint  string    `json:"key_thumbprint"`
	CreatedAt      time.Time `json:"created_at"`
}

func viewAccount(a *storage.Account) accountView {
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
	return v
}

func (q *adminRequest) listAccounts() error {
	v, p, err := q.query("registration", "contact", "status")
	if err != nil {
		return err
	}
	f := storage.AccountFilter{RegistrationID: v.Get("registration"), Contact: v.Get("contact"), Status: v.Get("status")}
	if err := checkStatus(f.Status, storage.StatusValid, storage.StatusDeactivated, storage.StatusRevoked); err != nil {
		return err
	}
	accts, next, err := q.h.store.ListAccounts(q.r.Context(), f, p.cursor, p.limit)
	if err != nil {
		return storeError(err, "accounts")
	}
	out := accountsPage{Accounts: []accountView{}, Next: next}
	for _, a := range accts {
		out.Accounts = append(out.Accounts, viewAccount(a))
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (q *adminRequest) getAccount(id string) error {
	a, err := q.h.store.GetAccount(q.r.Context(), id)
	if err != nil {
		return storeError(err, "account "+id)
	}
	return writeJSON(q.w, http.StatusOK, viewAccount(a))
}

// deactivateAccount ends an account as RFC 8555 §7.3.6 does for its holder:
// the gateway refuses every later request signed with its key.
func (q *adminRequest) deactivateAccount(id string) error {
	ctx := context.WithoutCancel(q.r.Context())
	var a *storage.Account
	var from string
	errAlready := errors.New("already deactivated")
	err := retryConflict(func() error {
		var err error
		if a, err = q.h.store.GetAccount(ctx, id); err != nil {
			return err
		}
		if a.Status != storage.StatusValid {
			return errAlready
		}
		from = a.Status
		if err := gateway.SetAccountStatus(a, storage.StatusDeactivated); err != nil {
			return err
		}
		return q.h.store.UpdateAccount(ctx, a)
	})
	if errors.Is(err, errAlready) {
		return apiError(http.StatusConflict, "account %s is %s already", id, a.Status)
	}
	if err != nil {
		return storeError(err, "account "+id)
	}
	q.audit(ctx, "account.deactivate", id, map[string]any{
		"from":            from,
		"registration_id": a.RegistrationID,
	})
	return writeJSON(q.w, http.StatusOK, viewAccount(a))
}
