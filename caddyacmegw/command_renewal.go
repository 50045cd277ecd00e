package caddyacmegw

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// renewalCommand is `renewal move` and `renewal rules`: officers moving
// the renewal windows (RFC 9773) that the gateway suggests to clients.
func renewalCommand() *cobra.Command {
	renewal := &cobra.Command{Use: "renewal", Short: "Moves the renewal windows suggested to ACME clients (RFC 9773)"}
	move := subcommand("move", "Moves the renewal window of the certificates of a scope issued until now", cmdRenewalMove)
	scopeFlags(move)
	f := move.Flags()
	f.String("start", "", "Window start, RFC 3339 (default: an hour before now)")
	f.String("end", "", "Window end, RFC 3339 (default: now, so that clients renew at their next look)")
	f.String("explanation-url", "", "A page telling subscribers why they renew early")
	rules := subcommand("rules", "Lists the rules that moved the windows of a scope", cmdRenewalRules)
	scopeFlags(rules)
	show := subcommand("show <serial>", "Shows a certificate's renewal window as clients get it now", cmdRenewalShow)
	renewal.AddCommand(move, rules, show)
	return renewal
}

// scopeFlags are the flags naming a scope; exactly one is given.
func scopeFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("certificate", "", "One certificate, by serial (hex)")
	f.String("account", "", "Every certificate of an account, by id")
	f.String("registration", "", "Every certificate of the account bound to a registration, by key id")
	f.Bool("issuer", false, "Every certificate of the gateway")
}

// scope reads the scope flags.
func (c *cli) scope() (storage.RenewalScope, error) {
	var scopes []storage.RenewalScope
	for _, kind := range []string{storage.RenewalScopeCertificate, storage.RenewalScopeAccount, storage.RenewalScopeRegistration} {
		if v := c.fl.String(kind); v != "" {
			scopes = append(scopes, storage.RenewalScope{Kind: kind, Value: v})
		}
	}
	if c.fl.Bool("issuer") {
		scopes = append(scopes, storage.RenewalScope{Kind: storage.RenewalScopeIssuer})
	}
	if len(scopes) != 1 {
		return storage.RenewalScope{}, errors.New("give exactly one of --certificate, --account, --registration or --issuer")
	}
	return scopes[0], nil
}

func cmdRenewalMove(c *cli) error {
	sc, err := c.scope()
	if err != nil {
		return err
	}
	body := map[string]any{"scope": sc.Kind, "value": sc.Value, "explanation_url": c.fl.String("explanation-url")}
	for flag, field := range map[string]string{"start": "window_start", "end": "window_end"} {
		if s := c.fl.String(flag); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return fmt.Errorf("--%s %q is not an RFC 3339 time like 2030-01-02T15:04:05Z", flag, s)
			}
			body[field] = t
		}
	}
	var rule storage.RenewalRule
	raw, err := c.call(http.MethodPost, "renewal-rules", body, &rule)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Renewal window of %s moved to %s – %s for certificates issued until %s (rule %s).\n",
		renewalTarget(rule.RenewalScope), formatTime(rule.WindowStart), formatTime(rule.WindowEnd), formatTime(rule.CreatedAt), rule.ID)
	return nil
}

func cmdRenewalRules(c *cli) error {
	sc, err := c.scope()
	if err != nil {
		return err
	}
	var page struct {
		Rules []storage.RenewalRule `json:"renewal_rules"`
	}
	q := url.Values{"scope": {sc.Kind}}
	if sc.Value != "" {
		q.Set("value", sc.Value)
	}
	raw, err := c.call(http.MethodGet, "renewal-rules?"+q.Encode(), nil, &page)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintln(tw, "RULE\tMADE\tBY\tWINDOW START\tWINDOW END\tEXPLANATION")
	for _, r := range page.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, formatTime(r.CreatedAt), orDash(r.CreatedBy),
			formatTime(r.WindowStart), formatTime(r.WindowEnd), orDash(r.ExplanationURL))
	}
	return tw.Flush()
}

func cmdRenewalShow(c *cli) error {
	var info gateway.RenewalInfo
	raw, err := c.call(http.MethodGet, "certificates/"+url.PathEscape(c.fl.Arg(0))+"/renewal-info", nil, &info)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintf(tw, "cert id:\t%s\n", info.CertID)
	fmt.Fprintf(tw, "window:\t%s – %s\n", formatTime(info.WindowStart), formatTime(info.WindowEnd))
	fmt.Fprintf(tw, "explanation:\t%s\n", orDash(info.ExplanationURL))
	return tw.Flush()
}
