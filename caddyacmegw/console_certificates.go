package caddyacmegw

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// certificatesData is a page of certificates found by name, serial,
// account and status.
type certificatesData struct {
	Name, Serial, Account, Status string
	Statuses                      []string
	Certificates                  []certificateView
	Next                          string
}

func consoleCertificates(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v := r.URL.Query()
	d := certificatesData{
		Name:     strings.TrimSpace(v.Get("name")),
		Serial:   strings.TrimSpace(v.Get("serial")),
		Account:  strings.TrimSpace(v.Get("account")),
		Status:   v.Get("status"),
		Statuses: certificateStatuses,
	}
	f := storage.CertificateFilter{Name: d.Name, Serial: d.Serial, AccountID: d.Account, Status: d.Status}
	out, err := q.officer.listCertificates(r.Context(), f, pageOf(r))
	if err != nil {
		return err
	}
	d.Certificates = out.Certificates
	d.Next = q.nextPage(r, out.Next, "certificates")
	return q.page(w, "certificates", "Certificates", "certificates", d)
}

// certificateData is one certificate with what its leaf says of its
// issuer.
type certificateData struct {
	Certificate certificateView
	Issuer      string
	Subject     string
	// Info is its renewal information as clients get it now.
	Info    gateway.RenewalInfo
	Renewal renewalForm
}

func (q *consoleRequest) certificateData(r *http.Request) (certificateData, error) {
	c, err := q.officer.certificate(r.Context(), r.PathValue("serial"))
	if err != nil {
		return certificateData{}, err
	}
	v := viewCertificateChain(c)
	d := certificateData{Certificate: v}
	if d.Info, err = q.officer.renewalInfoOf(r.Context(), c); err != nil {
		return certificateData{}, err
	}
	if d.Renewal, err = q.renewalForm(r.Context(), storage.RenewalScope{Kind: storage.RenewalScopeCertificate, Value: c.Serial}, "certificates", v.Serial); err != nil {
		return certificateData{}, err
	}
	if block, _ := pem.Decode([]byte(v.ChainPEM)); block != nil {
		if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
			d.Issuer, d.Subject = leaf.Issuer.String(), leaf.Subject.String()
		}
	}
	return d, nil
}

func consoleCertificate(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	d, err := q.certificateData(r)
	if err != nil {
		return err
	}
	return q.page(w, "certificate", "Certificate "+colonSerial(d.Certificate.Serial), "certificates", d)
}

// consoleCertificatePEM downloads the certificate's chain as stored.
func consoleCertificatePEM(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v, err := q.officer.getCertificate(r.Context(), r.PathValue("serial"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Content-Disposition", `attachment; filename="`+v.Serial+`.pem"`)
	_, _ = w.Write([]byte(v.ChainPEM))
	return nil
}

func consoleConfirmRevoke(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v, err := q.officer.getCertificate(r.Context(), r.PathValue("serial"))
	if err != nil {
		return err
	}
	return q.confirm(w, "Revoke certificate "+colonSerial(v.Serial), "certificates", confirmData{
		Question: fmt.Sprintf("Revoke certificate %s for %s? The CA is asked first; this cannot be undone.", colonSerial(v.Serial), strings.Join(v.Names, ", ")),
		Action:   q.link(nil, "certificates", v.Serial, "revoke"),
		Button:   "Revoke certificate",
		Cancel:   q.link(nil, "certificates", v.Serial),
		Reasons:  revocationReasons,
	})
}

func consoleRevoke(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	reason, err := strconv.Atoi(r.PostForm.Get("reason"))
	if err != nil {
		return apiError(http.StatusBadRequest, "choose a reason from the list")
	}
	v, err := q.officer.revokeCertificate(r.Context(), r.PathValue("serial"), reason)
	if err != nil {
		return err
	}
	return seeOther(w, r, q.link(nil, "certificates", v.Serial))
}
