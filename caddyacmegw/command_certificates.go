package caddyacmegw

import (
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func certificatesCommand() *cobra.Command {
	list := subcommand("certificates", "Lists issued certificates; its subcommands show, download or revoke one", cmdCertificates)
	f := list.Flags()
	f.String("account", "", "Only certificates of this account id")
	f.String("domain", "", "Only certificates holding this DNS name")
	f.String("serial", "", "Only the certificate with this serial (hex)")
	f.String("status", "", "Only certificates in this status (valid, revoked)")
	pageFlags(list)
	download := subcommand("download <serial>", "Prints a certificate's PEM chain, leaf first", cmdDownload)
	download.Flags().StringP("output", "o", "", "Write the chain to this file instead")
	revoke := subcommand("revoke <serial>", "Revokes a certificate at the CA", cmdRevoke)
	revoke.Flags().Int("reason", 0, "CRL reason code: 0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation")
	list.AddCommand(subcommand("show <serial>", "Shows a certificate", cmdShowCertificate), download, revoke)
	return list
}

func cmdCertificates(c *cli) error {
	var page certificatesPage
	return c.list("certificates", c.filters("account", "account", "domain", "name", "serial", "serial", "status", "status"), &page, func() string {
		c.printCertificates(page.Certificates)
		return page.Next
	})
}

func (c *cli) printCertificates(certs []certificateView) {
	tw := c.table()
	fmt.Fprintln(tw, "SERIAL\tSTATUS\tNOT AFTER\tNAMES\tACCOUNT")
	for _, ct := range certs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", opensslSerial(ct.Serial), ct.Status, formatTime(ct.NotAfter),
			orDash(strings.Join(ct.Names, ",")), ct.AccountID)
	}
	_ = tw.Flush()
}

// certificate reads the certificate whose serial is the first argument.
func (c *cli) certificate() (certificateView, []byte, error) {
	var cert certificateView
	raw, err := c.call(http.MethodGet, "certificates/"+url.PathEscape(c.fl.Arg(0)), nil, &cert)
	return cert, raw, err
}

func cmdShowCertificate(c *cli) error {
	cert, raw, err := c.certificate()
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	tw := c.table()
	fmt.Fprintf(tw, "serial:\t%s\n", opensslSerial(cert.Serial))
	status := cert.Status
	if cert.RevokedAt != nil && cert.RevocationReason != nil {
		status += fmt.Sprintf(" at %s, reason %s", formatTime(*cert.RevokedAt), reasonName(*cert.RevocationReason))
	}
	fmt.Fprintf(tw, "status:\t%s\n", status)
	fmt.Fprintf(tw, "names:\t%s\n", orDash(strings.Join(cert.Names, ", ")))
	fmt.Fprintf(tw, "not before:\t%s\n", formatTime(cert.NotBefore))
	fmt.Fprintf(tw, "not after:\t%s\n", formatTime(cert.NotAfter))
	fmt.Fprintf(tw, "issued:\t%s\n", formatTime(cert.IssuedAt))
	fmt.Fprintf(tw, "account:\t%s\n", cert.AccountID)
	fmt.Fprintf(tw, "order:\t%s\n", cert.OrderID)
	if cert.Profile != "" {
		fmt.Fprintf(tw, "profile:\t%s\n", cert.Profile)
	}
	_ = tw.Flush()
	fmt.Fprintf(c.out, "\n'certificates download %s' prints its PEM chain.\n", opensslSerial(cert.Serial))
	return nil
}

// cmdDownload prints the PEM chain as stored: --json prints the API's
// answer, which holds it as chain_pem.
func cmdDownload(c *cli) error {
	cert, raw, err := c.certificate()
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	if path := c.fl.String("output"); path != "" {
		return os.WriteFile(path, []byte(cert.ChainPEM), 0o644)
	}
	_, err = fmt.Fprint(c.out, cert.ChainPEM)
	return err
}

// reasonNames are the CRL reason codes the gateway accepts (RFC 5280 §5.3.1).
var reasonNames = map[int]string{0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded", 5: "cessationOfOperation"}

func reasonName(r int) string {
	return fmt.Sprintf("%d (%s)", r, reasonNames[r])
}

func cmdRevoke(c *cli) error {
	reason := c.fl.Int("reason")
	var cert certificateView
	raw, err := c.call(http.MethodPost, "certificates/"+url.PathEscape(c.fl.Arg(0))+"/revoke", map[string]int{"reason": reason}, &cert)
	if err != nil || c.json {
		return c.orJSON(raw, err)
	}
	fmt.Fprintf(c.out, "Certificate %s (%s) is revoked at the CA, reason %s.\n", opensslSerial(cert.Serial), strings.Join(cert.Names, ", "), reasonName(reason))
	return nil
}

// opensslSerial writes a stored serial (lower-case hex, no leading zeros)
// as 'openssl x509 -serial' prints it: upper-case hex of whole bytes.
// Anything else is left as it is.
func opensslSerial(s string) string {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 {
		return s
	}
	h := strings.ToUpper(n.Text(16))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return h
}
