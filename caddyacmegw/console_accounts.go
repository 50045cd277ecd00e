package caddyacmegw

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// accountsData is a page of accounts found by contact, registration or
// status.
type accountsData struct {
	Contact, Registration, Status string
	Statuses                      []string
	Accounts                      []accountView
	Next                          string
}

func consoleAccounts(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v := r.URL.Query()
	d := accountsData{
		Contact:      strings.TrimSpace(v.Get("contact")),
		Registration: strings.TrimSpace(v.Get("registration")),
		Status:       v.Get("status"),
		Statuses:     accountStatuses,
	}
	f := storage.AccountFilter{Contact: d.Contact, RegistrationID: d.Registration, Status: d.Status}
	out, err := q.officer.listAccounts(r.Context(), f, pageOf(r))
	if err != nil {
		return err
	}
	d.Accounts = out.Accounts
	d.Next = q.nextPage(r, out.Next, "accounts")
	return q.page(w, "accounts", "Accounts", "accounts", d)
}

// accountData is one account with its orders and certificates (their
// first pages).
type accountData struct {
	Account      accountView
	Orders       []orderView
	OrdersMore   bool
	Certificates []certificateView
	CertsMore    string
	Renewal      renewalForm
}

func consoleAccount(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	ctx, id := r.Context(), r.PathValue("id")
	a, err := q.officer.getAccount(ctx, id)
	if err != nil {
		return err
	}
	orders, err := q.officer.ordersOf(ctx, id, "", ordersCursor{}, page{limit: defaultPageLimit})
	if err != nil {
		return err
	}
	certs, err := q.officer.listCertificates(ctx, storage.CertificateFilter{AccountID: id}, page{limit: defaultPageLimit})
	if err != nil {
		return err
	}
	d := accountData{Account: a, Orders: orders.Orders, OrdersMore: orders.Next != "", Certificates: certs.Certificates}
	if certs.Next != "" {
		d.CertsMore = q.link(url.Values{"account": {id}, "cursor": {certs.Next}}, "certificates")
	}
	if d.Renewal, err = q.renewalForm(ctx, storage.RenewalScope{Kind: storage.RenewalScopeAccount, Value: a.ID}, "accounts", a.ID); err != nil {
		return err
	}
	return q.page(w, "account", "Account "+a.ID, "accounts", d)
}

func consoleConfirmDeactivate(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	a, err := q.officer.getAccount(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return q.confirm(w, "Deactivate account "+a.ID, "accounts", confirmData{
		Question: fmt.Sprintf("Deactivate account %s (%s)? The gateway then refuses every request signed with its key; this cannot be undone.", a.ID, strings.Join(a.Contact, ", ")),
		Action:   q.link(nil, "accounts", a.ID, "deactivate"),
		Button:   "Deactivate account",
		Cancel:   q.link(nil, "accounts", a.ID),
	})
}

func consoleDeactivate(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	id := r.PathValue("id")
	if _, err := q.officer.deactivateAccount(r.Context(), id); err != nil {
		return err
	}
	return seeOther(w, r, q.link(nil, "accounts", id))
}
