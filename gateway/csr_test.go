package gateway

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

var (
	testOIDSAN       = asn1.ObjectIdentifier{2, 5, 29, 17}
	testOIDBasic     = asn1.ObjectIdentifier{2, 5, 29, 19}
	testOIDEKU       = asn1.ObjectIdentifier{2, 5, 29, 37}
	testOIDKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 15}
	testOIDMustStapl = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}
)

// testExt is a requested extension holding val, DER-encoded.
func testExt(t *testing.T, oid asn1.ObjectIdentifier, val any) pkix.Extension {
	t.Helper()
	der, err := asn1.Marshal(val)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: der}
}

// sanWith is a SAN extension of www.example.com and one more general name.
func sanWith(t *testing.T, extra asn1.RawValue) pkix.Extension {
	t.Helper()
	dns := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("www.example.com")}
	return testExt(t, testOIDSAN, []asn1.RawValue{dns, extra})
}

func TestCheckCSR_Policy(t *testing.T) {
	upn, err := asn1.Marshal(struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}, asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("admin@example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	// The otherName's fields, without its own SEQUENCE header, under [0].
	var otherName asn1.RawValue
	if _, err := asn1.Unmarshal(upn, &otherName); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tmpl    x509.CertificateRequest
		wantErr string // "" when accepted
	}{
		{"names only", x509.CertificateRequest{DNSNames: []string{"www.example.com"}}, ""},
		{"common name repeating the name", x509.CertificateRequest{Subject: pkix.Name{CommonName: "www.example.com"}, DNSNames: []string{"www.example.com"}}, ""},
		{"server and client auth, digital signature, not a CA", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, ExtraExtensions: []pkix.Extension{
			testExt(t, testOIDEKU, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}, {1, 3, 6, 1, 5, 5, 7, 3, 2}}),
			testExt(t, testOIDKeyUsage, asn1.BitString{Bytes: []byte{0x80}, BitLength: 1}),
			testExt(t, testOIDBasic, struct{}{}),
		}}, ""},
		{"organization in the subject", x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"Example AB"}}, DNSNames: []string{"www.example.com"}}, "subject"},
		{"two common names", x509.CertificateRequest{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "www.example.com"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "www.example.com"},
		}}, DNSNames: []string{"www.example.com"}}, "one common name"},
		{"kelvin sign in the common name", x509.CertificateRequest{Subject: pkix.Name{CommonName: "www.\u212aexample.com"}, DNSNames: []string{"www.example.com"}}, "common name"},
		{"kelvin sign common name for a k name", x509.CertificateRequest{Subject: pkix.Name{CommonName: "\u212a.example.com"}, DNSNames: []string{"www.example.com", "k.example.com"}}, "common name"},
		{"e-mail SAN", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, EmailAddresses: []string{"admin@example.com"}}, "SAN"},
		{"UPN otherName SAN", x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			sanWith(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: otherName.Bytes}),
		}}, "otherName"},
		{"directoryName SAN", x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			sanWith(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: []byte{0x30, 0x00}}),
		}}, "directoryName"},
		{"code signing", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, ExtraExtensions: []pkix.Extension{
			testExt(t, testOIDEKU, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}}),
		}}, "extended key usage"},
		{"a CA", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, ExtraExtensions: []pkix.Extension{
			testExt(t, testOIDBasic, struct{ CA bool }{true}),
		}}, "CA"},
		{"certificate signing key usage", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, ExtraExtensions: []pkix.Extension{
			testExt(t, testOIDKeyUsage, asn1.BitString{Bytes: []byte{0x04}, BitLength: 6}),
		}}, "key usage"},
		{"must-staple", x509.CertificateRequest{DNSNames: []string{"www.example.com"}, ExtraExtensions: []pkix.Extension{
			testExt(t, testOIDMustStapl, []int{5}),
		}}, "1.3.6.1.5.5.7.1.24"},
	}
	www := &storage.Order{Identifiers: []storage.Identifier{{Type: "dns", Value: "www.example.com"}}}
	withK := &storage.Order{Identifiers: []storage.Identifier{{Type: "dns", Value: "www.example.com"}, {Type: "dns", Value: "k.example.com"}}}
	acct := &storage.Account{KeyThumbprint: "not this key"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &tt.tmpl, mustKey(t))
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			order := www
			if len(tt.tmpl.DNSNames) == 2 {
				order = withK
			}
			err = checkCSR(csr, order, acct)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkCSR = %v, want accepted", err)
				}
				return
			}
			p, ok := err.(*Problem)
			if !ok || p.Type != problemNS+"badCSR" || !strings.Contains(p.Detail, tt.wantErr) {
				t.Fatalf("checkCSR = %v, want badCSR saying %q", err, tt.wantErr)
			}
		})
	}
}
