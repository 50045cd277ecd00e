package caddyacmegw

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func accountsCommand() *cobra.Command {
	list := subcommand("accounts", "Lists ACME accounts; its subcommands show or deactivate one", cmdAccounts)
	list.Flags().String("registration", "", "Only accounts made with this registration key id")
	list.Flags().String("contact", "", "Only accounts with this contact (e.g. mailto:ops@example.com)")
	list.Flags().String("status", "", "Only accounts in this status (valid, deactivated, revoked)")
	pageFlags(list)
	show := subcommand("show <id>", "Shows an account with its orders and certificates", cmdShowAccount)
	show.Flags().Int("limit", defaultPageLimit, "How many orders and certificates to show at most")
	list.AddCommand(show,
		subcommand("deactivate <id>", "Deactivates an account for good: the gateway refuses its key after", cmdDeactivate))
	return list
}

func ordersCommand() *cobra.Command {
	orders := subcommand("orders", "Lists orders; --status processing lists those waiting on the CA", cmdOrders)
	orders.Flags().String("account", "", "Only orders of this account id")
	orders.Flags().String("status", "", "Only orders in this status (pending, ready, processing, valid, invalid)")
	pageFlags(orders)
	return orders
}

func cmdAccounts(c *cli) error {
	var page accountsPage
	return c.list("accounts", c.filters("registration", "registration", "contact", "contact", "status", "status"), &page, func() string {
		tw := c.table()
		fmt.Fprintln(tw, "ID\tSTATUS\tCAN ORDER\tREGISTRATION\tCONTACT\tCREATED")
		for _, a := range page.Accounts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Status, canOrder(a), orDash(a.RegistrationID),
				orDash(strings.Join(a.Contact, ",")), formatTime(a.CreatedAt))
		}
		_ = tw.Flush()
		return page.Next
	})
}

// canOrder says whether an account can order and, when not, why.
func canOrder(a accountView) string {
	switch {
	case a.CanOrder:
		return "yes"
	case a.Status != storage.StatusValid:
		return "no: account " + a.Status
	case a.RegistrationStatus != "":
		return "no: registration " + a.RegistrationStatus
	}
	return "no"
}

// accountOutput is what `accounts show --json` prints: the API's answers
// for the account, its orders and its certificates.
type accountOutput struct {
	Account      json.RawMessage `json:"account"`
	Orders       json.RawMessage `json:"orders"`
	Certificates json.RawMessage `json:"certificates"`
}

func cmdShowAccount(c *cli) error {
	id := c.fl.Arg(0)
	var a accountView
	var orders ordersPage
	var certs certificatesPage
	var out accountOutput
	var err error
	if out.Account, err = c.call(http.MethodGet, "accounts/"+url.PathEscape(id), nil, &a); err != nil {
		return err
	}
	q := url.Values{"account": {a.ID}, "limit": {fmt.Sprint(c.fl.Int("limit"))}}
	if out.Orders, err = c.call(http.MethodGet, "orders?"+q.Encode(), nil, &orders); err != nil {
		return err
	}
	if out.Certificates, err = c.call(http.MethodGet, "certificates?"+q.Encode(), nil, &certs); err != nil {
		return err
	}
	if c.json {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return c.printJSON(b)
	}
	tw := c.table()
	fmt.Fprintf(tw, "id:\t%s\n", a.ID)
	fmt.Fprintf(tw, "status:\t%s\n", a.Status)
	fmt.Fprintf(tw, "can order:\t%s\n", canOrder(a))
	if a.RegistrationID != "" {
		fmt.Fprintf(tw, "registration:\t%s (%s)\n", a.RegistrationID, a.RegistrationStatus)
	} else {
		fmt.Fprintf(tw, "registration:\tnone\n")
	}
	fmt.Fprintf(tw, "contact:\t%s\n", orDash(strings.Join(a.Contact, ", ")))
	fmt.Fprintf(tw, "key thumbprint:\t%s\n", a.KeyThumbprint)
	fmt.Fprintf(tw, "created:\t%s\n", formatTime(a.CreatedAt))
	_ = tw.Flush()
	if !a.CanOrder && a.Status == storage.StatusValid {
		fmt.Fprintln(c.out, "\nIt can still read its orders and certificates and revoke them.")
	}
	fmt.Fprintf(c.out, "\nOrders:\n")
	c.printOrders(orders.Orders)
	if orders.Next != "" {
		fmt.Fprintf(c.out, "More: 'orders --account %s --cursor %s'\n", a.ID, orders.Next)
	}
	fmt.Fprintf(c.out, "\nCertificates:\n")
	c.printCertificates(certs.Certificates)
	if certs.Next != "" {
		fmt.Fprintf(c.out, "More: 'certificates --account %s --cursor %s'\n", a.ID, certs.Next)
	}
	return nil
}

func cmdDeactivate(c *cli) error {
	var a accountView
	raw, err := c.call(http.MethodPost, "accounts/"+url.PathEscape(c.fl.Arg(0))+"/deactivate", nil, &a)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Account %s is deactivated, for good: the gateway refuses every request\n"+
		"signed with its key. Its certificates stay valid until they expire;\n"+
		"'certificates --account %s' lists them, 'certificates revoke' revokes one.\n", a.ID, a.ID)
	return nil
}

func cmdOrders(c *cli) error {
	var page ordersPage
	return c.list("orders", c.filters("account", "account", "status", "status"), &page, func() string {
		c.printOrders(page.Orders)
		return page.Next
	})
}

func (c *cli) printOrders(orders []orderView) {
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSTATUS\tSINCE\tACCOUNT\tNAMES\tDETAIL")
	for _, o := range orders {
		names := make([]string, len(o.Identifiers))
		for i, id := range o.Identifiers {
			names[i] = id.Value
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Status, formatTime(o.UpdatedAt), o.AccountID,
			orDash(strings.Join(names, ",")), orderDetail(o))
	}
	_ = tw.Flush()
}

// orderDetail says what an order's status leaves open: the certificate
// of a valid one, how long a processing one has waited on the CA.
func orderDetail(o orderView) string {
	switch o.Status {
	case storage.StatusValid:
		return "certificate " + opensslSerial(o.CertificateSerial)
	case storage.StatusProcessing:
		s := "waiting on the CA for " + time.Since(o.UpdatedAt).Truncate(time.Second).String()
		if o.IssuerRef != "" {
			s += ", request " + o.IssuerRef
		}
		return s
	}
	return "-"
}
