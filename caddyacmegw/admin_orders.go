package caddyacmegw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// orderView is an order as officers see it. A processing order waits on
// the CA: UpdatedAt is when it began to, and IssuerRef, when set, is the
// CA's handle of the request.
type orderView struct {
	ID                string               `json:"id"`
	AccountID         string               `json:"account_id"`
	Status            string               `json:"status"`
	Identifiers       []storage.Identifier `json:"identifiers"`
	Profile           string               `json:"profile,omitempty"`
	CreatedAt         time.Time            `json:"created_at"`
	UpdatedAt         time.Time            `json:"updated_at"`
	Expires           time.Time            `json:"expires"`
	CertificateSerial string               `json:"certificate_serial,omitempty"`
	IssuerRef         string               `json:"issuer_ref,omitempty"`
	Error             json.RawMessage      `json:"error,omitempty"`
}

// viewOrder shows a pending or ready order whose expiry passed as invalid,
// as its client sees it; otherwise the status is the stored one.
func viewOrder(o *storage.Order, now time.Time) orderView {
	v := orderView{
		ID:                o.ID,
		AccountID:         o.AccountID,
		Status:            o.Status,
		Identifiers:       o.Identifiers,
		Profile:           o.Profile,
		CreatedAt:         o.CreatedAt,
		UpdatedAt:         o.UpdatedAt,
		Expires:           o.Expires,
		CertificateSerial: o.CertificateSerial,
		IssuerRef:         o.IssuerRef,
	}
	if v.Identifiers == nil {
		v.Identifiers = []storage.Identifier{}
	}
	if (v.Status == storage.StatusPending || v.Status == storage.StatusReady) && !now.Before(o.Expires) {
		v.Status = storage.StatusInvalid
	}
	if json.Valid(o.Error) {
		v.Error = o.Error
	}
	return v
}

// ordersCursor is where a listing of orders goes on: the account listing's
// cursor that named the account being walked ("" for the first), and the
// cursor within that account's orders.
type ordersCursor struct {
	Account string `json:"a,omitempty"`
	Order   string `json:"o,omitempty"`
}

// listOrders lists orders of one account or of all, optionally of one
// status. Storage lists orders by account only, so the listing walks the
// accounts and reads each order: it costs a read per order, which is
// acceptable for officers looking for the few orders waiting on the CA. One
// request reads at most filterScanPages pages of orders, as listAudit does;
// a page may hold fewer entries than the limit, even none, before its next.
func (q *adminRequest) listOrders() error {
	v, p, err := q.query("account", "status")
	if err != nil {
		return err
	}
	out, err := q.officer().listOrders(q.r.Context(), v.Get("account"), v.Get("status"), p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, out)
}

func (o *officer) listOrders(ctx context.Context, account, status string, p page) (ordersPage, error) {
	if err := checkStatus(status, storage.StatusPending, storage.StatusReady, storage.StatusProcessing, storage.StatusValid, storage.StatusInvalid); err != nil {
		return ordersPage{}, err
	}
	var cur ordersCursor
	if p.cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.cursor)
		if err != nil || json.Unmarshal(b, &cur) != nil {
			return ordersPage{}, apiError(http.StatusBadRequest, "cursor %q is not one this listing gave", p.cursor)
		}
	}
	if account != "" {
		if _, err := o.h.store.GetAccount(ctx, account); err != nil {
			return ordersPage{}, storeError(err, "account "+account)
		}
	}
	return o.ordersOf(ctx, account, status, cur, p)
}

// ordersOf is listOrders from cur, for a status and an account already
// checked.
func (o *officer) ordersOf(ctx context.Context, account, status string, cur ordersCursor, p page) (ordersPage, error) {
	out := ordersPage{Orders: []orderView{}}
	now := o.h.now()
	done := false
	for range filterScanPages {
		id, accountNext := account, ""
		if id == "" {
			accts, next, err := o.h.store.ListAccounts(ctx, storage.AccountFilter{}, cur.Account, 1)
			if err != nil {
				return ordersPage{}, storeError(err, "accounts")
			}
			if len(accts) == 0 {
				done = true
				break
			}
			id, accountNext = accts[0].ID, next
		}
		// Pages no longer than what is missing, so that a page read whole
		// never overfills the answer.
		ids, nextOrder, err := o.h.store.ListOrders(ctx, id, cur.Order, p.limit-len(out.Orders))
		if err != nil {
			return ordersPage{}, storeError(err, "orders")
		}
		for _, oid := range ids {
			o, err := o.h.store.GetOrder(ctx, oid)
			if err != nil {
				return ordersPage{}, storeError(err, "order "+oid)
			}
			if ov := viewOrder(o, now); status == "" || ov.Status == status {
				out.Orders = append(out.Orders, ov)
			}
		}
		cur.Order = nextOrder
		if nextOrder == "" {
			if accountNext == "" {
				done = true
				break
			}
			cur = ordersCursor{Account: accountNext}
		}
		if len(out.Orders) == p.limit {
			break
		}
	}
	if !done {
		b, _ := json.Marshal(cur)
		out.Next = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, nil
}
