package caddyacmegw

import (
	"bytes"
	"encoding/json"
	"errors"
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
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "acme-gateway",
		Usage: "<register|registrations|accounts|orders|certificates|renewal|audit> [--name <gateway>] [--address <listen>] [--config <path> [--adapter <name>]] [--json]",
		Short: "Manages the ACME gateway's registrations, accounts and certificates",
		Long: `
Talks to a running Caddy's admin API to manage an ACME gateway (the
acme_gateway handler): pre-registrations for external account binding,
the accounts made with them, their orders and the certificates issued.

  register --domains a.example,b.example [--expires 720h] [--description ..]
      creates a pre-registration and prints its key id, its HMAC key (shown
      this once only) and a certbot command line that uses them
  registrations                         lists pre-registrations
  registrations show <key-id>
  registrations edit <key-id> [--domains ..] [--expires ..|--no-expiry]
                              [--procedure ..] [--description ..]
  registrations disable <key-id>        its account can no longer order
  registrations enable <key-id>
  registrations delete <key-id>         its account can no longer order
  accounts [--registration ..] [--contact ..] [--status ..]
  accounts show <id>                    with its orders and certificates
  accounts deactivate <id>              for good: the key is refused after
  orders [--account ..] [--status ..]   --status processing: waiting on the CA
  certificates [--account ..] [--domain ..] [--serial ..] [--status ..]
  certificates show <serial>
  certificates download <serial> [--output file]   the PEM chain
  certificates revoke <serial> [--reason n]        at the CA
  renewal move --certificate <serial>|--account <id>|--registration <key-id>|--issuer
               [--start ..] [--end ..] [--explanation-url ..]
      moves the renewal window (RFC 9773) of those certificates issued until
      now, into the past by default: their clients renew at their next look
  renewal rules --certificate ..|--account ..|--registration ..|--issuer
  renewal show <serial>                 its window as clients get it now
  audit                                 lists the officers' changes

Serials are printed as 'openssl x509 -serial' does (upper-case hex); any
hex form is accepted, with or without colons or leading zeros.

Lists print tables; --json prints the API's JSON for scripts. Lists show
one page (--limit, default 50) and tell the --cursor of the next one.
An error is printed as "error: <message>" on stderr, and the command
exits with status 1.

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
	pf.Bool("json", false, "Print the API's JSON instead of text")
	pf.String("officer", "", "Who you are, for the audit trail (default: your login name)")
	cmd.AddCommand(registerCommand(), registrationsCommand(), accountsCommand(), ordersCommand(), certificatesCommand(), renewalCommand(), auditCommand())
}

// subcommand is a command that takes one argument when its use line names
// one right after the command's name ("show <key-id>"), else none.
func subcommand(use, short string, f func(c *cli) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: run(f)}
	if words := strings.Fields(use); len(words) > 1 && strings.HasPrefix(words[1], "<") {
		cmd.Args = cobra.ExactArgs(1)
		cmd.Long = short + ".\nAn argument that begins with \"-\" goes after \"--\": " + words[0] + " -- -AbC"
	}
	return cmd
}

func pageFlags(cmd *cobra.Command) {
	cmd.Flags().String("cursor", "", "Where to continue a listing (printed below the previous page)")
	cmd.Flags().Int("limit", defaultPageLimit, "How many entries to show at most")
}

func auditCommand() *cobra.Command {
	audit := subcommand("audit", "Lists the officers' changes, oldest first", cmdAudit)
	pageFlags(audit)
	return audit
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

// run adapts a subcommand to cobra, with the admin address found like
// 'caddy reload' finds it. It prints a failure as "error: <message>" on
// stderr and returns it, so that Caddy's main exits with status 1; cobra
// does not print it again.
func run(f func(c *cli) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		fl := caddycmd.Flags{FlagSet: cmd.Flags()}
		err := func() error {
			addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
			if err != nil {
				return fmt.Errorf("couldn't determine admin API address: %v", err)
			}
			c := &cli{fl: fl, out: cmd.OutOrStdout(), addr: addr, name: fl.String("name"), json: fl.Bool("json"), officer: fl.String("officer")}
			if c.officer == "" {
				if u, err := user.Current(); err == nil {
					c.officer = u.Username
				}
			}
			return f(c)
		}()
		if err != nil {
			cmd.SilenceErrors = true
			fmt.Fprintf(cmd.ErrOrStderr(), "error: %v\n", err)
		}
		return err
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
		return nil, apiMessage(err)
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

// apiMessage turns the error of caddycmd.AdminAPIRequest into the
// message the admin API sent. That function returns no typed error: a
// refusal is "caddy responded with error: HTTP <status>: <body>", with
// the body {"error": "<message>"}. Any other error is a failure to reach
// the admin API, said as such.
func apiMessage(err error) error {
	_, body, ok := strings.Cut(err.Error(), "caddy responded with error: HTTP ")
	if !ok {
		return fmt.Errorf("reaching the admin API: %w", err)
	}
	_, body, _ = strings.Cut(body, ": ")
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &answer) != nil || answer.Error == "" {
		return errors.New(strings.TrimSpace(body))
	}
	return errors.New(answer.Error)
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

func cmdAudit(c *cli) error {
	var page auditPage
	return c.list("audit", url.Values{}, &page, func() string {
		tw := c.table()
		fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tDETAIL")
		for _, e := range page.Audit {
			target := e.Target
			if strings.HasPrefix(e.Action, "certificate.") {
				target = opensslSerial(target)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatTime(e.Time), e.Actor, e.Action, target, orDash(string(e.Detail)))
		}
		_ = tw.Flush()
		return page.Next
	})
}

// list prints one page of a listing: the API's JSON, or the table that
// print writes of page, and the cursor of the next page that print
// returns.
func (c *cli) list(path string, q url.Values, page any, print func() (next string)) error {
	raw, err := c.call(http.MethodGet, path+c.pageQuery(q), nil, page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	c.footer(print())
	return nil
}

// filters is the query of a listing's filter flags, given as pairs of
// flag name and query parameter.
func (c *cli) filters(flagParam ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(flagParam); i += 2 {
		if s := c.fl.String(flagParam[i]); s != "" {
			q.Set(flagParam[i+1], s)
		}
	}
	return q
}

// orJSON ends a subcommand that failed or that prints JSON.
func (c *cli) orJSON(raw []byte, err error) error {
	if err != nil {
		return err
	}
	return c.printJSON(raw)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

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
