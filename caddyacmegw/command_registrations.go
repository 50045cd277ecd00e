package caddyacmegw

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func registerCommand() *cobra.Command {
	register := subcommand("register --domains <names> [--expires <duration|time>] [--description <text>]",
		"Creates a pre-registration (EAB key) and prints how to use it", cmdRegister)
	f := register.Flags()
	f.StringSlice("domains", nil, "Names the account may order certificates for, comma-separated; \"*.x\" and entries below which names are allowed")
	f.String("expires", "", "When the registration stops working: a duration (720h, 30d) or an RFC 3339 time")
	f.String("description", "", "What the registration is for")
	f.String("key-id", "", "Key id to use (default: random)")
	f.String("procedure", "", "gateway.Issuer procedure for this account's certificates")
	f.StringSlice("emails", nil, emailsUsage)
	f.StringSlice("profiles", nil, profilesUsage)
	f.String("directory", "", "The gateway's ACME directory URL, for the certbot line (default: from the gateway's base_url)")
	_ = register.MarkFlagRequired("domains")
	return register
}

// profilesUsage describes --profiles.
const profilesUsage = "Profiles, comma-separated, the only ones the account may order under (default: all the gateway's)"

// emailsUsage describes --emails.
const emailsUsage = "E-mail addresses, comma-separated, that add_account_contact_email may put into the account's certificates: its contact must be one of them"

func registrationsCommand() *cobra.Command {
	list := subcommand("registrations", "Lists pre-registrations; its subcommands change one", cmdRegistrations)
	pageFlags(list)
	edit := subcommand("edit <key-id>", "Changes a pre-registration's domains, e-mails, expiry, procedure or description", cmdEditRegistration)
	f := edit.Flags()
	f.StringSlice("domains", nil, "Names the account may order certificates for, comma-separated (replaces the list)")
	f.String("expires", "", "When the registration stops working: a duration from now (720h, 30d) or an RFC 3339 time")
	f.Bool("no-expiry", false, "The registration never expires")
	f.String("procedure", "", "gateway.Issuer procedure for this account's certificates (\"\" for the issuer's default)")
	f.StringSlice("emails", nil, emailsUsage+" (replaces the list; \"\" empties it)")
	f.StringSlice("profiles", nil, profilesUsage+" (replaces the list; \"\" allows all)")
	f.String("description", "", "What the registration is for")
	edit.MarkFlagsMutuallyExclusive("expires", "no-expiry")
	list.AddCommand(
		subcommand("show <key-id>", "Shows a pre-registration", cmdShowRegistration),
		edit,
		subcommand("disable <key-id>", "Disables a pre-registration: its account can no longer order", cmdDisable),
		subcommand("enable <key-id>", "Makes a disabled pre-registration active again", cmdEnable),
		subcommand("delete <key-id>", "Deletes a pre-registration: its account can no longer order, for good", cmdDeleteRegistration),
	)
	return list
}

// registerOutput is what `register --json` prints.
type registerOutput struct {
	registrationView
	Directory       string `json:"directory"`
	DirectoryKnown  bool   `json:"directory_known"`
	BindingRequired bool   `json:"binding_required"`
	Certbot         string `json:"certbot_command"`
}

// clientWords are the words by which certbot, lego and acme.sh open an
// account bound to a registration, before what each line goes on with
// (the names to order, an e-mail address), for shellJoin.
type clientWords struct{ certbot, lego, acmeSh []string }

// bindingWords are the clients' words for a registration on a directory.
// certbot and lego take "--flag=value": a base64url value may begin with
// "-", which a separate argument would turn into an option.
func bindingWords(directory, kid, hmacKey string) clientWords {
	return clientWords{
		certbot: []string{"certbot", "certonly", "--server", directory, "--eab-kid=" + kid, "--eab-hmac-key=" + hmacKey},
		lego:    []string{"lego", "--server", directory, "--eab", "--kid=" + kid, "--hmac=" + hmacKey},
		acmeSh:  []string{"acme.sh", "--register-account", "--server", directory, "--eab-kid", kid, "--eab-hmac-key", hmacKey},
	}
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
		body[expiresField(s)] = s
	}
	for flag, field := range map[string]string{"description": "description", "key-id": "key_id", "procedure": "procedure"} {
		if s := c.fl.String(flag); s != "" {
			body[field] = s
		}
	}
	if emails, _ := c.fl.GetStringSlice("emails"); len(emails) > 0 {
		body["emails"] = emails
	}
	if profiles, _ := c.fl.GetStringSlice("profiles"); len(profiles) > 0 {
		body["profiles"] = profiles
	}
	var reg registrationView
	if _, err := c.call(http.MethodPost, "registrations", body, &reg); err != nil {
		return err
	}

	line := bindingWords(directory, reg.KeyID, reg.HMACKey).certbot
	for _, d := range reg.AllowedDomains {
		line = append(line, "-d", d)
	}
	certbot := shellJoin(line)
	if c.json {
		b, err := json.Marshal(registerOutput{registrationView: reg, Directory: directory, DirectoryKnown: known,
			BindingRequired: info.Registration == gateway.RegistrationPreregistered, Certbot: certbot})
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
	if len(reg.Emails) > 0 {
		fmt.Fprintf(tw, "  e-mails:\t%s\n", strings.Join(reg.Emails, ", "))
	}
	fmt.Fprintf(tw, "  expires:\t%s\n", formatExpires(reg.Expires))
	if reg.Description != "" {
		fmt.Fprintf(tw, "  description:\t%s\n", reg.Description)
	}
	_ = tw.Flush()
	fmt.Fprint(c.out, "\nThe HMAC key is shown only this once: it cannot be read back. Hand it\n"+
		"to the client's operator over a secure channel. A client uses it once,\n"+
		"to create its ACME account.\n\n")
	fmt.Fprintln(c.out, certbot)
	if info.Registration == gateway.RegistrationOpen {
		fmt.Fprint(c.out, "\nRegistration on this gateway is open: a client may also create an account\n"+
			"without a key, and then orders any name the gateway allows. An account\n"+
			"created with this key is held to the allowed domains above, and stops\n"+
			"ordering when the registration is disabled, expires or is deleted.\n")
	}
	if !known {
		fmt.Fprint(c.out, "\nThe directory URL above is a guess: the gateway has no base_url in its\n"+
			"configuration, so its public host is unknown here. Replace <acme-host> with\n"+
			"the host clients reach the gateway at, or pass --directory.\n")
	}
	return nil
}

func cmdRegistrations(c *cli) error {
	var page registrationsPage
	return c.list("registrations", url.Values{}, &page, func() string {
		tw := c.table()
		fmt.Fprintln(tw, "KEY ID\tSTATUS\tDOMAINS\tPROFILES\tEXPIRES\tACCOUNT\tDESCRIPTION")
		for _, r := range page.Registrations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.KeyID, r.Status, orDash(strings.Join(r.AllowedDomains, ",")),
				cmp.Or(strings.Join(r.Profiles, ","), "all"), formatExpires(r.Expires), orDash(r.AccountID), orDash(oneLine(r.Description)))
		}
		_ = tw.Flush()
		return page.Next
	})
}

// registration reads the registration named by the first argument.
func (c *cli) registration() (registrationView, []byte, error) {
	var reg registrationView
	raw, err := c.call(http.MethodGet, "registrations/"+url.PathEscape(c.fl.Arg(0)), nil, &reg)
	return reg, raw, err
}

// patchRegistration sends a change of the registration named by the first
// argument.
func (c *cli) patchRegistration(body map[string]any) (registrationView, []byte, error) {
	var reg registrationView
	raw, err := c.call(http.MethodPatch, "registrations/"+url.PathEscape(c.fl.Arg(0)), body, &reg)
	return reg, raw, err
}

func cmdShowRegistration(c *cli) error {
	reg, raw, err := c.registration()
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	c.printRegistration(reg)
	return nil
}

func (c *cli) printRegistration(reg registrationView) {
	tw := c.table()
	fmt.Fprintf(tw, "key id:\t%s\n", reg.KeyID)
	status := reg.Status
	if reg.Expires != nil && !time.Now().Before(*reg.Expires) {
		status += ", expired"
	}
	fmt.Fprintf(tw, "status:\t%s\n", status)
	fmt.Fprintf(tw, "allowed domains:\t%s\n", orDash(strings.Join(reg.AllowedDomains, ", ")))
	fmt.Fprintf(tw, "expires:\t%s\n", formatExpires(reg.Expires))
	fmt.Fprintf(tw, "e-mails:\t%s\n", orDash(strings.Join(reg.Emails, ", ")))
	fmt.Fprintf(tw, "procedure:\t%s\n", orDash(reg.Procedure))
	fmt.Fprintf(tw, "profiles:\t%s\n", cmp.Or(strings.Join(reg.Profiles, ", "), "all"))
	fmt.Fprintf(tw, "description:\t%s\n", orDash(oneLine(reg.Description)))
	fmt.Fprintf(tw, "account:\t%s\n", cmp.Or(reg.AccountID, "none yet"))
	fmt.Fprintf(tw, "created:\t%s by %s\n", formatTime(reg.CreatedAt), orDash(reg.CreatedBy))
	if reg.UpdatedBy != "" {
		fmt.Fprintf(tw, "changed:\t%s by %s\n", formatTime(reg.UpdatedAt), reg.UpdatedBy)
	}
	_ = tw.Flush()
}

func cmdEditRegistration(c *cli) error {
	body := map[string]any{}
	if c.fl.Changed("domains") {
		domains, _ := c.fl.GetStringSlice("domains")
		body["allowed_domains"] = domains
	}
	if s := c.fl.String("expires"); s != "" {
		body[expiresField(s)] = s
	}
	if c.fl.Bool("no-expiry") {
		body["expires"] = nil
	}
	for _, f := range []string{"emails", "profiles"} {
		if c.fl.Changed(f) {
			list, _ := c.fl.GetStringSlice(f)
			body[f] = slices.DeleteFunc(list, func(s string) bool { return s == "" })
		}
	}
	for _, f := range []string{"procedure", "description"} {
		if c.fl.Changed(f) {
			body[f] = c.fl.String(f)
		}
	}
	if len(body) == 0 {
		return fmt.Errorf("nothing to change: give --domains, --emails, --profiles, --expires, --no-expiry, --procedure or --description")
	}
	reg, raw, err := c.patchRegistration(body)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Registration %s now reads:\n\n", reg.KeyID)
	c.printRegistration(reg)
	return nil
}

func cmdDisable(c *cli) error {
	reg, raw, err := c.patchRegistration(map[string]any{"status": "disabled"})
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Registration %s is disabled: no account can be created with it.\n", reg.KeyID)
	if reg.AccountID != "" {
		fmt.Fprintf(c.out, "Account %s was made with it: it can no longer order certificates\n"+
			"nor change its account; it can still read its orders and certificates and\n"+
			"revoke them.\n", reg.AccountID)
	}
	fmt.Fprintf(c.out, "'registrations enable %s' undoes this.\n", reg.KeyID)
	return nil
}

func cmdEnable(c *cli) error {
	reg, raw, err := c.patchRegistration(map[string]any{"status": "active"})
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	if reg.Expires != nil && !time.Now().Before(*reg.Expires) {
		fmt.Fprintf(c.out, "Registration %s is active, but it expired at %s: it lets no account order\n"+
			"until 'registrations edit %s --expires <when>' gives it a new expiry.\n", reg.KeyID, formatExpires(reg.Expires), reg.KeyID)
		return nil
	}
	if reg.AccountID != "" {
		fmt.Fprintf(c.out, "Registration %s is active: account %s, made with it, can order again.\n", reg.KeyID, reg.AccountID)
		return nil
	}
	fmt.Fprintf(c.out, "Registration %s is active: a client can create its account with it.\n", reg.KeyID)
	return nil
}

// cmdDeleteRegistration reads the registration first, to name the account
// it leaves behind; with --json it prints nothing, as the API answers
// nothing.
func cmdDeleteRegistration(c *cli) error {
	reg, _, err := c.registration()
	if err != nil {
		return err
	}
	if _, err := c.call(http.MethodDelete, "registrations/"+url.PathEscape(reg.KeyID), nil, nil); err != nil || c.json {
		return err
	}
	fmt.Fprintf(c.out, "Registration %s is deleted: its key can create no account.\n", reg.KeyID)
	if reg.AccountID != "" {
		fmt.Fprintf(c.out, "Account %s was made with it: it can no longer order certificates\n"+
			"nor change its account, for good; it can still read its orders and\n"+
			"certificates and revoke them.\n", reg.AccountID)
	}
	return nil
}

// expiresField is the API's field for an --expires value: a time, or a
// duration from now.
func expiresField(s string) string {
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return "expires"
	}
	return "expires_in"
}
