package caddyacmegw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "acme-gateway",
		Usage: "<register|registrations|disable|accounts|certificates|revoke|audit> [--name <gateway>] [--address <listen>] [--config <path> [--adapter <name>]]",
		Short: "Manages the ACME gateway's registrations, accounts and certificates",
		Long: `
Talks to a running Caddy's admin API to manage an ACME gateway (the
acme_gateway handler): pre-registrations for external account binding,
the accounts made with them, and the certificates issued.

  register --domains a.example,b.example [--expires 720h] [--description ..]
      creates a pre-registration and prints its key id, its HMAC key (shown
      this once only) and a certbot command line that uses them
  registrations                   lists pre-registrations
  disable <key-id>                disables a pre-registration
  accounts [--registration ..] [--contact ..] [--status ..]
  certificates [--account ..] [--domain ..] [--serial ..] [--status ..]
  revoke <serial> [--reason n]    revokes a certificate at the CA
  audit                           lists the officers' changes

Lists print tables; --json prints the API's JSON for scripts. Lists show
one page (--limit, default 50) and tell the --cursor of the next one.

--name selects the gateway (its "name" in the config; default "default").
Like 'caddy reload', the command finds the admin API at --address, or in
the config given by --config (and --adapter), or at ` + caddy.DefaultAdminListen + `.
--officer names you in the gateway's audit trail (default: your login
name); on Caddy's remote admin endpoint your client certificate names you
instead.`,
		CobraFunc: setupCommand,
	})
}

// setupCommand builds the acme-gateway command tree on cmd.
func setupCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "Address of the administration API listener (if --config is not used)")
	pf.StringP("config", "c", "", "Configuration file (if --address is not used)")
	pf.StringP("adapter", "a", "", "Name of config adapter to apply (if --config is used)")
	pf.String("name", "default", "Name of the ACME gateway")
	pf.Bool("json", false, "Print JSON instead of text")
	pf.String("officer", "", "Who you are, for the audit trail (default: your login name)")

	register := &cobra.Command{
		Use:   "register --domains <names> [--expires <duration|time>] [--description <text>]",
		Short: "Creates a pre-registration (EAB key) and prints how to use it",
		Args:  cobra.NoArgs,
		RunE:  run(cmdRegister),
	}
	register.Flags().StringSlice("domains", nil, "Names the account may order certificates for, comma-separated; \"*.x\" and entries below which names are allowed")
	register.Flags().String("expires", "", "When the registration stops working: a duration (720h, 30d) or an RFC 3339 time")
	register.Flags().String("description", "", "What the registration is for")
	register.Flags().String("key-id", "", "Key id to use (default: random)")
	register.Flags().String("procedure", "", "gateway.Issuer procedure for this account's certificates")
	register.Flags().String("directory", "", "The gateway's ACME directory URL, for the certbot line (default: from the gateway's base_url)")
	_ = register.MarkFlagRequired("domains")

	registrations := &cobra.Command{
		Use:   "registrations",
		Short: "Lists pre-registrations",
		Args:  cobra.NoArgs,
		RunE:  run(cmdRegistrations),
	}
	pageFlags(registrations)

	disable := &cobra.Command{
		Use:   "disable <key-id>",
		Short: "Disables a pre-registration",
		Args:  cobra.ExactArgs(1),
		RunE:  run(cmdDisable),
	}

	accounts := &cobra.Command{
		Use:   "accounts [--registration <key-id>] [--contact <url>] [--status <status>]",
		Short: "Lists ACME accounts",
		Args:  cobra.NoArgs,
		RunE:  run(cmdAccounts),
	}
	accounts.Flags().String("registration", "", "Only accounts made with this registration key id")
	accounts.Flags().String("contact", "", "Only accounts with this contact (e.g. mailto:ops@example.com)")
	accounts.Flags().String("status", "", "Only accounts in this status (valid, deactivated, revoked)")
	pageFlags(accounts)

	certificates := &cobra.Command{
		Use:   "certificates [--account <id>] [--domain <name>] [--serial <hex>] [--status <status>]",
		Short: "Lists issued certificates",
		Args:  cobra.NoArgs,
		RunE:  run(cmdCertificates),
	}
	certificates.Flags().String("account", "", "Only certificates of this account id")
	certificates.Flags().String("domain", "", "Only certificates holding this DNS name")
	certificates.Flags().String("serial", "", "Only the certificate with this serial (hex)")
	certificates.Flags().String("status", "", "Only certificates in this status (valid, revoked)")
	pageFlags(certificates)

	revoke := &cobra.Command{
		Use:   "revoke <serial> [--reason <n>]",
		Short: "Revokes a certificate at the CA",
		Args:  cobra.ExactArgs(1),
		RunE:  run(cmdRevoke),
	}
	revoke.Flags().Int("reason", 0, "CRL reason code: 0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation")

	audit := &cobra.Command{
		Use:   "audit",
		Short: "Lists the officers' changes, oldest first",
		Args:  cobra.NoArgs,
		RunE:  run(cmdAudit),
	}
	pageFlags(audit)

	cmd.AddCommand(register, registrations, disable, accounts, certificates, revoke, audit)
}

func pageFlags(cmd *cobra.Command) {
	cmd.Flags().String("cursor", "", "Where to continue a listing (printed below the previous page)")
	cmd.Flags().Int("limit", defaultPageLimit, "How many entries to show at most")
}

// cli is one run of a subcommand.
type cli struct {
	fl      caddycmd.Flags
	out     io.Writer
	addr    string
	name    string
	json    bool
	officer string
}

// run adapts a subcommand to cobra the way Caddy's own commands are, with
// the admin address found like 'caddy reload' finds it.
func run(f func(c *cli) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
			addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
			if err != nil {
				return caddy.ExitCodeFailedStartup, fmt.Errorf("couldn't determine admin API address: %v", err)
			}
			c := &cli{fl: fl, out: cmd.OutOrStdout(), addr: addr, name: fl.String("name"), json: fl.Bool("json"), officer: fl.String("officer")}
			if c.officer == "" {
				if u, err := user.Current(); err == nil {
					c.officer = u.Username
				}
			}
			if err := f(c); err != nil {
				return caddy.ExitCodeFailedStartup, err
			}
			return caddy.ExitCodeSuccess, nil
		})(cmd, args)
	}
}

// call sends one request to the gateway's admin API and returns the body;
// it decodes it into out when out is not nil.
func (c *cli) call(method, path string, body, out any) ([]byte, error) {
	uri := adminBase + url.PathEscape(c.name) + "/" + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	h := make(http.Header)
	if c.officer != "" {
		h.Set(officerHeader, c.officer)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, h, rd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer: %v", err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decoding answer: %v", err)
		}
	}
	return raw, nil
}

// printJSON prints an API answer indented, for scripts.
func (c *cli) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := c.out.Write(buf.Bytes())
	return err
}

func (c *cli) pageQuery(q url.Values) string {
	if s := c.fl.String("cursor"); s != "" {
		q.Set("cursor", s)
	}
	q.Set("limit", fmt.Sprint(c.fl.Int("limit")))
	return "?" + q.Encode()
}

func (c *cli) table() *tabwriter.Writer { return tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0) }

func (c *cli) footer(next string) {
	if next != "" {
		fmt.Fprintf(c.out, "\nMore entries: run again with --cursor %s\n", next)
	}
}

// registerOutput is what `register --json` prints.
type registerOutput struct {
	registrationView
	Directory      string `json:"directory"`
	DirectoryKnown bool   `json:"directory_known"`
	Certbot        string `json:"certbot_command"`
}

func cmdRegister(c *cli) error {
	domains, _ := c.fl.GetStringSlice("domains")
	if len(domains) == 0 {
		return fmt.Errorf("--domains is required: the names the account may order")
	}
	var info gatewayInfo
	if _, err := c.call(http.MethodGet, "", nil, &info); err != nil {
		return err
	}
	directory, known := c.fl.String("directory"), true
	if directory == "" {
		directory, known = info.Directory, info.Directory != ""
	}
	if directory == "" {
		directory = "https://<acme-host>" + info.PathPrefix + gateway.PathDirectory
	}

	body := map[string]any{"allowed_domains": domains}
	if s := c.fl.String("expires"); s != "" {
		if _, err := time.Parse(time.RFC3339, s); err == nil {
			body["expires"] = s
		} else {
			body["expires_in"] = s
		}
	}
	for flag, field := range map[string]string{"description": "description", "key-id": "key_id", "procedure": "procedure"} {
		if s := c.fl.String(flag); s != "" {
			body[field] = s
		}
	}
	var reg registrationView
	if _, err := c.call(http.MethodPost, "registrations", body, &reg); err != nil {
		return err
	}

	// "--flag=value": a base64url value may begin with "-", which a
	// separate argument would turn into an option.
	line := []string{"certbot", "certonly", "--server", directory, "--eab-kid=" + reg.KeyID, "--eab-hmac-key=" + reg.HMACKey}
	for _, d := range reg.AllowedDomains {
		line = append(line, "-d", d)
	}
	certbot := shellJoin(line)
	if c.json {
		b, err := json.Marshal(registerOutput{registrationView: reg, Directory: directory, DirectoryKnown: known, Certbot: certbot})
		if err != nil {
			return err
		}
		return c.printJSON(b)
	}

	fmt.Fprintf(c.out, "Created registration on gateway %q.\n\n", c.name)
	tw := c.table()
	fmt.Fprintf(tw, "  key id:\t%s\n", reg.KeyID)
	fmt.Fprintf(tw, "  HMAC key:\t%s\n", reg.HMACKey)
	fmt.Fprintf(tw, "  allowed domains:\t%s\n", strings.Join(reg.AllowedDomains, ", "))
	fmt.Fprintf(tw, "  expires:\t%s\n", formatExpires(reg.Expires))
	if reg.Description != "" {
		fmt.Fprintf(tw, "  description:\t%s\n", reg.Description)
	}
	_ = tw.Flush()
	fmt.Fprint(c.out, "\nThe HMAC key is shown only this once: it cannot be read back. Hand it\n"+
		"to the client's operator over a secure channel. A client uses it once,\n"+
		"to create its ACME account.\n\n")
	fmt.Fprintln(c.out, certbot)
	if !known {
		fmt.Fprint(c.out, "\nThe directory URL above is a guess: the gateway has no base_url in its\n"+
			"configuration, so its public host is unknown here. Replace <acme-host> with\n"+
			"the host clients reach the gateway at, or pass --directory.\n")
	}
	return nil
}

func cmdRegistrations(c *cli) error {
	var page registrationsPage
	raw, err := c.call(http.MethodGet, "registrations"+c.pageQuery(url.Values{}), nil, &page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintln(tw, "KEY ID\tSTATUS\tDOMAINS\tEXPIRES\tACCOUNT\tDESCRIPTION")
	for _, r := range page.Registrations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.KeyID, r.Status, orDash(strings.Join(r.AllowedDomains, ",")),
			formatExpires(r.Expires), orDash(r.AccountID), orDash(oneLine(r.Description)))
	}
	_ = tw.Flush()
	c.footer(page.Next)
	return nil
}

func cmdDisable(c *cli) error {
	kid := c.fl.Arg(0)
	var reg registrationView
	raw, err := c.call(http.MethodPatch, "registrations/"+url.PathEscape(kid), map[string]string{"status": "disabled"}, &reg)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Registration %s is disabled: it can no longer create an account.\n", reg.KeyID)
	if reg.AccountID != "" {
		fmt.Fprintf(c.out, "Account %s, made with it earlier, stays as it is; see 'accounts --registration %s'.\n", reg.AccountID, reg.KeyID)
	}
	return nil
}

func cmdAccounts(c *cli) error {
	q := url.Values{}
	for _, f := range []string{"registration", "contact", "status"} {
		if s := c.fl.String(f); s != "" {
			q.Set(f, s)
		}
	}
	var page accountsPage
	raw, err := c.call(http.MethodGet, "accounts"+c.pageQuery(q), nil, &page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSTATUS\tREGISTRATION\tCONTACT\tCREATED")
	for _, a := range page.Accounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Status, orDash(a.RegistrationID),
			orDash(strings.Join(a.Contact, ",")), a.CreatedAt.UTC().Format(time.RFC3339))
	}
	_ = tw.Flush()
	c.footer(page.Next)
	return nil
}

func cmdCertificates(c *cli) error {
	q := url.Values{}
	for flag, param := range map[string]string{"account": "account", "domain": "name", "serial": "serial", "status": "status"} {
		if s := c.fl.String(flag); s != "" {
			q.Set(param, s)
		}
	}
	var page certificatesPage
	raw, err := c.call(http.MethodGet, "certificates"+c.pageQuery(q), nil, &page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintln(tw, "SERIAL\tSTATUS\tNOT AFTER\tNAMES\tACCOUNT")
	for _, ct := range page.Certificates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ct.Serial, ct.Status, ct.NotAfter.UTC().Format(time.RFC3339),
			orDash(strings.Join(ct.Names, ",")), ct.AccountID)
	}
	_ = tw.Flush()
	c.footer(page.Next)
	return nil
}

// reasonNames are the CRL reason codes the gateway accepts (RFC 5280 §5.3.1).
var reasonNames = map[int]string{0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded", 5: "cessationOfOperation"}

func cmdRevoke(c *cli) error {
	serial, reason := c.fl.Arg(0), c.fl.Int("reason")
	var cert certificateView
	raw, err := c.call(http.MethodPost, "certificates/"+url.PathEscape(serial)+"/revoke", map[string]int{"reason": reason}, &cert)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Certificate %s (%s) is revoked, reason %d (%s).\n", cert.Serial, strings.Join(cert.Names, ", "), reason, reasonNames[reason])
	return nil
}

func cmdAudit(c *cli) error {
	var page auditPage
	raw, err := c.call(http.MethodGet, "audit"+c.pageQuery(url.Values{}), nil, &page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, e := range page.Audit {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, orDash(string(e.Detail)))
	}
	_ = tw.Flush()
	c.footer(page.Next)
	return nil
}

// orJSON ends a subcommand that failed or that prints JSON.
func (c *cli) orJSON(raw []byte, err error) error {
	if err != nil {
		return err
	}
	return c.printJSON(raw)
}

func formatExpires(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a free-text field from breaking a table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// shellJoin quotes the words that a POSIX shell would otherwise change
// (a wildcard domain, the placeholder's angle brackets).
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
			out[i] = w
			continue
		}
		out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
