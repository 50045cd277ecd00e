package cmtest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/caddyacmegw/caddyacmegw/cm"
	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// client is an HTTP client that trusts s and presents certPEM/keyPEM (none
// when certPEM is nil).
func client(t *testing.T, s *cmtest.Server, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.RootsPEM())
	tc := &tls.Config{RootCAs: roots}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func newCSR(t *testing.T, name string, tamper bool) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		der[len(der)-1] ^= 0xff // the signature no longer verifies
	}
	return der
}

// part is one part of a multipart body, its data written in base64.
type part struct {
	name, mediaType string
	data            []byte
}

func multipartBody(t *testing.T, parts ...part) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.name))
		h.Set("Content-Type", p.mediaType)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(base64.StdEncoding.EncodeToString(p.data)))
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func csrPart(der []byte) part { return part{cm.PartPKCS10, cm.MediaPKCS10, der} }
func sigPart(sig []byte) part { return part{cm.PartSignature, cm.MediaSignature, sig} }

// post sends an issue request and returns the status and body.
func post(t *testing.T, c *http.Client, url, accept string, parts ...part) (int, []byte) {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	req, _ := http.NewRequest(http.MethodPost, url+cm.PathPKCS10, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// dataToSign reads a challenge answer.
func dataToSign(t *testing.T, status int, body []byte) []byte {
	t.Helper()
	var ch cm.SignChallenge
	if status != http.StatusOK || json.Unmarshal(body, &ch) != nil || ch.DataToSign == "" {
		t.Fatalf("answer %d %s, want data to sign", status, body)
	}
	data, err := base64.StdEncoding.DecodeString(ch.DataToSign)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sign is a CMS SignedData over data by the officer certPEM/keyPEM.
func sign(t *testing.T, data, certPEM, keyPEM []byte) []byte {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(pair.Certificate[0])
	sd, err := pkcs7.NewSignedData(data)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, pair.PrivateKey, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestIssue_IsStrict(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	certPEM, keyPEM := s.Officer(t)
	good := client(t, s, certPEM, keyPEM)
	audCert, audKey := s.Officer(t, "auditor")
	auditor := client(t, s, audCert, audKey)
	csr := newCSR(t, "a.test", false)
	tests := []struct {
		name   string
		client *http.Client
		ct     string // "": the multipart of parts
		parts  []part
		want   int // 0: the handshake fails
	}{
		{"valid request", good, "", []part{csrPart(csr)}, 200},
		{"JSON body", good, "application/json", nil, 415},
		{"unknown part", good, "", []part{csrPart(csr), {"procedure", "text/plain", []byte("x")}}, 400},
		{"pkcs10 part twice", good, "", []part{csrPart(csr), csrPart(csr)}, 400},
		{"pkcs10 part of another type", good, "", []part{{cm.PartPKCS10, "application/octet-stream", csr}}, 400},
		{"no pkcs10 part", good, "", nil, 400},
		{"CSR signature does not verify", good, "", []part{csrPart(newCSR(t, "a.test", true))}, 400},
		{"officer without the role", auditor, "", []part{csrPart(csr)}, 403},
		{"no client certificate", client(t, s, nil, nil), "", []part{csrPart(csr)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.parts...)
			if tt.ct != "" {
				body, ct = []byte(`{"pkcs10":"`+base64.StdEncoding.EncodeToString(csr)+`"}`), tt.ct
			}
			res, err := tt.client.Post(s.URL()+cm.PathPKCS10, ct, bytes.NewReader(body))
			if tt.want == 0 {
				if err == nil {
					res.Body.Close()
					t.Fatalf("status %d, want a failed handshake", res.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
	if got := s.Counts(); got.Issued != 0 {
		t.Errorf("issued %d without a signature", got.Issued)
	}
}

// The data to sign is single use and bound to its request; the signature
// must verify against the officer CA, by any officer.
func TestIssue_SignatureRules(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	certPEM, keyPEM := s.Officer(t)
	c := client(t, s, certPEM, keyPEM)
	csr := newCSR(t, "b.test", false)
	challenge := func(csr []byte) []byte {
		st, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr))
		return dataToSign(t, st, b)
	}

	otherCert, otherKey := s.Officer(t) // another officer may sign
	sig := sign(t, challenge(csr), otherCert, otherKey)
	if st, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr), sigPart(sig)); st != 200 {
		t.Fatalf("signed request: %d %s", st, b)
	} else if _, err := x509.ParseCertificate(b); err != nil {
		t.Fatalf("answer is not a DER certificate: %v", err)
	}
	wrongCert, wrongKey := s.WrongOfficer(t)
	for name, sig := range map[string][]byte{
		"used again":                    sig,
		"signed for another CSR":        sign(t, challenge(newCSR(t, "c.test", false)), certPEM, keyPEM),
		"signer outside the officer CA": sign(t, challenge(csr), wrongCert, wrongKey),
		"other data signed":             sign(t, []byte("not the data to sign"), certPEM, keyPEM),
		"not CMS":                       []byte("garbage"),
	} {
		if st, b := post(t, c, s.URL(), "", csrPart(csr), sigPart(sig)); st != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", name, st, b)
		}
	}
	if got := s.Counts(); got.Issued != 1 || got.SignedIssues != 1 || len(s.Signatures()) != 1 {
		t.Errorf("counts = %+v, want one signed issue", got)
	}
}

// A signature made by the system's openssl is accepted: the simulator
// reads standard CMS, not only what the client's library writes.
func TestIssue_AcceptsOpenSSLSignature(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	s := cmtest.New(t, cmtest.Options{})
	certPEM, keyPEM := s.Officer(t)
	c := client(t, s, certPEM, keyPEM)
	csr := newCSR(t, "openssl.test", false)
	st, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr))
	dir := t.TempDir()
	files := map[string][]byte{"data": dataToSign(t, st, b), "officer.crt": certPEM, "officer.key": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-md", "sha256",
		"-in", "data", "-signer", "officer.crt", "-inkey", "officer.key", "-out", "sig.der")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(filepath.Join(dir, "sig.der"))
	if err != nil {
		t.Fatal(err)
	}
	if st, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr), sigPart(sig)); st != 200 {
		t.Fatalf("openssl's signature: %d %s", st, b)
	}
}

// VRO: the first request issues; without Accept: application/pkix-cert
// the answer is PKCS#7 with the leaf and the intermediate.
func TestIssue_VROAnswersPKCS7(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}}})
	certPEM, keyPEM := s.Officer(t)
	c := client(t, s, certPEM, keyPEM)
	st, b := post(t, c, s.URL(), "", csrPart(newCSR(t, "vro.test", false)))
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	p7, err := pkcs7.Parse(b)
	if err != nil || len(p7.Certificates) != 2 {
		t.Fatalf("answer is not PKCS#7 with two certificates: %v", err)
	}
	if got := s.Counts(); got.Issued != 1 || got.Challenges != 0 {
		t.Errorf("counts = %+v", got)
	}
}

// Search by the documented parameters; others are refused.
func TestSearch(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}}})
	certPEM, keyPEM := s.Officer(t)
	c := client(t, s, certPEM, keyPEM)
	var serials []string
	for _, name := range []string{"s1.test", "s2.test"} {
		_, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(newCSR(t, name, false)))
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != name {
			t.Errorf("common name %q, want the CSR's first name %q", cert.Subject.CommonName, name)
		}
		serials = append(serials, cm.SerialHex(cert.SerialNumber))
	}
	search := func(q string) (int, []string) {
		res, err := c.Get(s.URL() + cm.PathCertificates + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r cm.SearchResult
		_ = json.NewDecoder(res.Body).Decode(&r)
		var got []string
		for _, e := range r.Certificates {
			got = append(got, e.CertificateSerialNumber)
		}
		return res.StatusCode, got
	}
	tests := []struct {
		query  string
		status int
		want   []string
	}{
		{"", 200, serials},
		{"subjectCommonName=S2.test", 200, serials[1:]},
		{"certificateSerialNumber=" + strings.ToUpper(serials[0]), 200, serials[:1]},
		{"isNotRevoked=true&searchLimit=1", 200, serials[:1]},
		{"searchOffset=1", 200, serials[1:]},
		{"isNotRevoked=false", 200, nil},
		{"isNotRevoked=maybe", 400, nil},
		{"serial=1", 400, nil},
		{"subjectCountry=SE", 501, nil},
	}
	for _, tt := range tests {
		st, got := search(tt.query)
		if st != tt.status || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("search %q = %d %v, want %d %v", tt.query, st, got, tt.status, tt.want)
		}
	}
}

// Revocation is a signed write; its body is read strictly.
func TestRevoke_SignedRoundTrip(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	certPEM, keyPEM := s.Officer(t)
	c := client(t, s, certPEM, keyPEM)
	csr := newCSR(t, "r.test", false)
	st, b := post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr))
	_, b = post(t, c, s.URL(), cm.MediaPKIXCert, csrPart(csr), sigPart(sign(t, dataToSign(t, st, b), certPEM, keyPEM)))
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	revoke := func(body string) (int, []byte) {
		res, err := c.Post(s.URL()+cm.PathRevoke, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	serial := cm.SerialHex(cert.SerialNumber)
	req := `{"certificateSerialNumber":"` + serial + `","revocationReason":4`
	if st, _ := revoke(req + `,"comment":"x"}`); st != 400 {
		t.Errorf("unknown field: %d, want 400", st)
	}
	if st, _ := revoke(`{"certificateSerialNumber":"abcdef","revocationReason":4}`); st != 404 {
		t.Errorf("unknown serial: %d, want 404", st)
	}
	st, b = revoke(req + `}`)
	data := dataToSign(t, st, b)
	if _, ok := s.Revocation(serial); ok {
		t.Fatal("revoked without a signature")
	}
	sig := base64.StdEncoding.EncodeToString(sign(t, data, certPEM, keyPEM))
	if st, b := revoke(`{"certificateSerialNumber":"` + serial + `","revocationReason":1,"signature":"` + sig + `"}`); st != 403 {
		t.Errorf("signature for another reason: %d %s, want 403", st, b)
	}
	st, b = revoke(req + `}`)
	data = dataToSign(t, st, b)
	sig = base64.StdEncoding.EncodeToString(sign(t, data, certPEM, keyPEM))
	if st, b := revoke(req + `,"signature":"` + sig + `"}`); st != 200 {
		t.Fatalf("signed revoke: %d %s", st, b)
	}
	if reason, ok := s.Revocation(serial); !ok || reason != 4 {
		t.Errorf("Revocation = %d, %v", reason, ok)
	}
	if st, _ := revoke(req + `}`); st != 409 {
		t.Errorf("revoked again: %d, want 409", st)
	}
}

// Each procedure is its own endpoint.
func TestProcedureURL(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}, "ACME TLS Client": {VRO: true}}})
	if got := s.ProcedureURL("ACME TLS Client"); !strings.HasSuffix(got, "/pgwy/acme-tls-client/api") {
		t.Fatalf("ProcedureURL = %q", got)
	}
	if s.ProcedureURL("nope") != "" || s.ProcedureURL(cmtest.DefaultProcedure) != s.URL() {
		t.Fatal("ProcedureURL of the default or an unknown procedure")
	}
	certPEM, keyPEM := s.Officer(t)
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("officer certificate is not PEM")
	}
	c := client(t, s, certPEM, keyPEM)
	if st, _ := post(t, c, s.ProcedureURL("ACME TLS Client"), "", csrPart(newCSR(t, "p.test", false))); st != 200 {
		t.Fatalf("issue at the second procedure: %d", st)
	}
	if got := s.Counts().IssuedBy; got["ACME TLS Client"] != 1 {
		t.Errorf("IssuedBy = %v", got)
	}
}
