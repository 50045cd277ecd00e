package caddyacmegw

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// adminEnv is a gateway registered under a name of its own, with the
// admin API served by httptest the way Caddy's admin endpoint serves it.
type adminEnv struct {
	t    *testing.T
	g    *testGateway
	srv  *httptest.Server
	addr string // host:port of the admin server, for the CLI
	base string // URL of /acme-gateway/<name>/
}

var adminSeq atomic.Int64

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	g := newTestGateway(t, fmt.Sprintf("admin-test-%d", adminSeq.Add(1)))
	gateways.add(g.h)
	t.Cleanup(func() { gateways.remove(g.h) })
	srv := httptest.NewServer(adminTestHandler(&adminAPI{}))
	t.Cleanup(srv.Close)
	return &adminEnv{
		t: t, g: g, srv: srv,
		addr: strings.TrimPrefix(srv.URL, "http://"),
		base: srv.URL + adminBase + g.h.Name + "/",
	}
}

// adminTestHandler serves the module's routes and writes their errors as
// Caddy's admin handler does: the status and {"error": message}.
func adminTestHandler(a caddy.AdminRouter) http.Handler {
	mux := http.NewServeMux()
	for _, route := range a.Routes() {
		mux.Handle(route.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := route.Handler.ServeHTTP(w, r)
			if err == nil {
				return
			}
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) {
				apiErr = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
			}
			if apiErr.Message == "" && apiErr.Err != nil {
				apiErr.Message = apiErr.Err.Error()
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(apiErr.HTTPStatus)
			_ = json.NewEncoder(w).Encode(apiErr)
		}))
	}
	return mux
}

// do sends one admin request to path below the gateway's base (or, for a
// path starting with "/", on the server); body is JSON-encoded unless it is
// a string.
func (e *adminEnv) do(method, path string, body any, header ...string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	url := e.base + path
	if strings.HasPrefix(path, "/") { // outside this gateway
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// must sends a request that has to answer want, and decodes the answer.
func (e *adminEnv) must(want int, method, path string, body, out any, header ...string) []byte {
	e.t.Helper()
	status, raw := e.do(method, path, body, header...)
	if status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return raw
}

func (e *adminEnv) auditEntries() []auditView {
	e.t.Helper()
	var page struct {
		Audit []auditView `json:"audit"`
	}
	e.must(http.StatusOK, http.MethodGet, "audit?limit=500", nil, &page)
	return page.Audit
}

func (e *adminEnv) createRegistration(body map[string]any) registrationView {
	e.t.Helper()
	var v registrationView
	e.must(http.StatusCreated, http.MethodPost, "registrations", body, &v)
	return v
}

// TestAdmin_RefusesBadRequests checks that bad input gets a clear 4xx
// with a JSON message, and changes nothing.
func TestAdmin_RefusesBadRequests(t *testing.T) {
	e := newAdminEnv(t)
	e.createRegistration(map[string]any{"key_id": "kid-1", "allowed_domains": []string{"example.com"}})
	before := len(e.auditEntries())
	long := strings.Repeat("x", maxAdminBody+1)

	tests := []struct {
		name, method, path string
		body               any
		want               int
		message            string
	}{
		{"unknown gateway", "GET", "/acme-gateway/no-such-gateway/registrations", nil, 404, "no ACME gateway named"},
		{"no gateway name", "GET", "/acme-gateway/", nil, 404, "no gateway name"},
		{"unknown resource", "GET", "widgets", nil, 404, "resource not found"},
		{"wrong method", "PUT", "registrations", `{}`, 405, "not allowed"},
		{"not JSON", "POST", "registrations", `{"allowed_domains": [`, 400, "bad JSON"},
		{"empty body", "POST", "registrations", "", 400, "empty"},
		{"two values", "POST", "registrations", `{} {}`, 400, "more than one"},
		{"unknown field", "POST", "registrations", `{"hmac_key": "AAAA"}`, 400, "unknown field"},
		{"too large", "POST", "registrations", `{"description": "` + long + `"}`, 413, "exceeds"},
		{"bad domain", "POST", "registrations", map[string]any{"allowed_domains": []string{"exa mple.com"}}, 400, "allowed_domains"},
		{"empty domain", "POST", "registrations", map[string]any{"allowed_domains": []string{""}}, 400, "allowed_domains"},
		{"both expiries", "POST", "registrations", map[string]any{"expires": "2099-01-01T00:00:00Z", "expires_in": "1h"}, 400, "not both"},
		{"past expiry", "POST", "registrations", map[string]any{"expires": "2001-01-01T00:00:00Z"}, 400, "not in the future"},
		{"bad expiry", "POST", "registrations", map[string]any{"expires": "tomorrow"}, 400, "RFC 3339"},
		{"bad duration", "POST", "registrations", map[string]any{"expires_in": "-5h"}, 400, "positive duration"},
		{"bad key id", "POST", "registrations", map[string]any{"key_id": "a/b"}, 400, "key_id"},
		{"taken key id", "POST", "registrations", map[string]any{"key_id": "kid-1"}, 409, "exists"},
		{"get unknown", "GET", "registrations/nope", nil, 404, "not found"},
		{"patch unknown", "PATCH", "registrations/nope", map[string]any{"status": "disabled"}, 404, "not found"},
		{"patch bad status", "PATCH", "registrations/kid-1", map[string]any{"status": "gone"}, 400, "status must be"},
		{"patch nothing", "PATCH", "registrations/kid-1", `{}`, 400, "nothing to change"},
		{"patch unknown field", "PATCH", "registrations/kid-1", map[string]any{"account_id": "x"}, 400, "unknown field"},
		{"patch bad domains", "PATCH", "registrations/kid-1", map[string]any{"allowed_domains": "example.com"}, 400, "list of names"},
		{"patch both expiries", "PATCH", "registrations/kid-1", map[string]any{"expires": nil, "expires_in": "1h"}, 400, "not both"},
		{"delete unknown", "DELETE", "registrations/nope", nil, 404, "not found"},
		{"bad limit", "GET", "registrations?limit=0", nil, 400, "limit"},
		{"huge limit", "GET", "accounts?limit=100000", nil, 400, "limit"},
		{"unknown filter", "GET", "accounts?owner=x", nil, 400, "unknown query parameter"},
		{"bad account status", "GET", "accounts?status=pending", nil, 400, "status"},
		{"unknown account", "GET", "accounts/nope", nil, 404, "not found"},
		{"deactivate unknown", "POST", "accounts/nope/deactivate", nil, 404, "not found"},
		{"bad serial", "GET", "certificates/xyz", nil, 400, "hexadecimal"},
		{"unknown certificate", "GET", "certificates/abc123", nil, 404, "not found"},
		{"revoke bad reason", "POST", "certificates/abc123/revoke", map[string]any{"reason": 2}, 400, "reason 2 not accepted"},
		{"revoke reason 6", "POST", "certificates/abc123/revoke", map[string]any{"reason": 6}, 400, "not accepted"},
		{"revoke unknown", "POST", "certificates/abc123/revoke", map[string]any{"reason": 1}, 404, "not found"},
		{"revoke by GET", "GET", "certificates/abc123/revoke", nil, 405, "not allowed"},
		{"paging renewal rules", "GET", "renewal-rules?scope=issuer&limit=5", nil, 400, "listed whole"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.do(tc.method, tc.path, tc.body)
			var msg struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(raw, &msg); err != nil {
				t.Fatalf("%d, not a JSON error: %s", status, raw)
			}
			if status != tc.want || !strings.Contains(msg.Error, tc.message) {
				t.Fatalf("%d %q, want %d with %q", status, msg.Error, tc.want, tc.message)
			}
		})
	}
	if after := len(e.auditEntries()); after != before {
		t.Fatalf("refused requests wrote %d audit entries", after-before)
	}
	if reg := e.g.registration("kid-1"); reg.Status != storage.RegistrationActive || reg.Version != 1 {
		t.Fatalf("refused requests changed the registration: %+v", reg)
	}
}

func TestAdmin_ListsPage(t *testing.T) {
	e := newAdminEnv(t)
	for _, kid := range []string{"c", "a", "b"} {
		e.createRegistration(map[string]any{"key_id": kid})
	}
	var page struct {
		Registrations []registrationView `json:"registrations"`
		Next          string             `json:"next"`
	}
	e.must(http.StatusOK, http.MethodGet, "registrations?limit=2", nil, &page)
	if len(page.Registrations) != 2 || page.Registrations[0].KeyID != "a" || page.Registrations[1].KeyID != "b" || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}
	next := page.Next
	page.Registrations, page.Next = nil, ""
	e.must(http.StatusOK, http.MethodGet, "registrations?limit=2&cursor="+next, nil, &page)
	if len(page.Registrations) != 1 || page.Registrations[0].KeyID != "c" || page.Next != "" {
		t.Fatalf("second page %+v", page)
	}
	var audit struct {
		Audit []auditView `json:"audit"`
		Next  string      `json:"next"`
	}
	e.must(http.StatusOK, http.MethodGet, "audit?limit=2", nil, &audit)
	if len(audit.Audit) != 2 || audit.Audit[0].Target != "c" || audit.Next == "" {
		t.Fatalf("audit page %+v", audit)
	}
}

// TestAdmin_AccountsCertificatesAndRevocation runs the whole officer story:
// a registration used by a client, its account and certificate listed,
// the certificate revoked through the issuer, the account deactivated.
func TestAdmin_AccountsCertificatesAndRevocation(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	reg := e.createRegistration(map[string]any{"allowed_domains": []string{"example.com"}})
	mac, _ := base64.RawURLEncoding.DecodeString(reg.HMACKey)

	acct, accountID, err := g.newAccount(reg.KeyID, mac)
	if err != nil {
		t.Fatalf("newAccount with the officer's key: %v", err)
	}
	g.mustAccount("", nil)
	leaf := g.issue(acct, "www.example.com")
	serial := leaf.SerialNumber.Text(16)

	var accts struct {
		Accounts []accountView `json:"accounts"`
	}
	e.must(http.StatusOK, http.MethodGet, "accounts?registration="+reg.KeyID, nil, &accts)
	if len(accts.Accounts) != 1 || accts.Accounts[0].ID != accountID || accts.Accounts[0].Status != storage.StatusValid {
		t.Fatalf("accounts of the registration: %+v", accts)
	}
	accts.Accounts = nil
	e.must(http.StatusOK, http.MethodGet, "accounts", nil, &accts)
	if len(accts.Accounts) != 2 {
		t.Fatalf("all accounts: %+v", accts)
	}
	var view accountView
	e.must(http.StatusOK, http.MethodGet, "accounts/"+accountID, nil, &view)
	if view.RegistrationID != reg.KeyID || len(view.Contact) != 1 {
		t.Fatalf("account %+v", view)
	}

	var certs struct {
		Certificates []certificateView `json:"certificates"`
	}
	for _, q := range []string{"account=" + accountID, "name=WWW.example.com", "serial=" + strings.ToUpper(serial), "status=valid"} {
		certs.Certificates = nil
		raw := e.must(http.StatusOK, http.MethodGet, "certificates?"+q, nil, &certs)
		if len(certs.Certificates) != 1 || certs.Certificates[0].Serial != serial || bytes.Contains(raw, []byte("chain_pem")) {
			t.Fatalf("certificates?%s: %s", q, raw)
		}
	}
	e.must(http.StatusOK, http.MethodGet, "certificates?name=other.example.com", nil, &certs)
	if len(certs.Certificates) != 0 {
		t.Fatalf("filter by another name found %+v", certs)
	}
	var cert certificateView
	e.must(http.StatusOK, http.MethodGet, "certificates/"+serial, nil, &cert)
	if block, _ := pem.Decode([]byte(cert.ChainPEM)); block == nil || !bytes.Equal(block.Bytes, leaf.Raw) || cert.RevokedAt != nil {
		t.Fatalf("certificate %+v", cert)
	}

	// Revocation goes through the issuer and is recorded after it.
	e.must(http.StatusOK, http.MethodPost, "certificates/"+serial+"/revoke", map[string]any{"reason": 1}, &cert, officerHeader, "carol")
	if reason, ok := g.issuer.Revocation(serial); !ok || reason != 1 {
		t.Fatalf("issuer revocation %d, %v; want 1", reason, ok)
	}
	stored, _ := g.store.GetCertificate(context.Background(), serial)
	if stored.Status != storage.StatusRevoked || stored.RevocationReason != 1 || stored.RevokedAt.IsZero() {
		t.Fatalf("stored after revoke: %+v", stored)
	}
	if cert.Status != storage.StatusRevoked || cert.RevocationReason == nil || *cert.RevocationReason != 1 {
		t.Fatalf("revoke answered %+v", cert)
	}
	e.must(http.StatusConflict, http.MethodPost, "certificates/"+serial+"/revoke", map[string]any{"reason": 1}, nil)

	e.must(http.StatusOK, http.MethodPost, "accounts/"+accountID+"/deactivate", nil, &view)
	if view.Status != storage.StatusDeactivated {
		t.Fatalf("deactivate answered %+v", view)
	}
	e.must(http.StatusConflict, http.MethodPost, "accounts/"+accountID+"/deactivate", nil, nil)
	if _, err := g.obtain(acct, "x.example.com"); err == nil {
		t.Fatal("a deactivated account ordered")
	}

	var trail []string
	for _, a := range e.auditEntries() {
		trail = append(trail, a.Action+" "+a.Target)
		if a.Action == "certificate.revoke" && (a.Actor != "carol" || !bytes.Contains(a.Detail, []byte(`"reason":1`))) {
			t.Errorf("revoke entry %+v %s", a, a.Detail)
		}
		if a.Action == "account.deactivate" && !strings.HasPrefix(a.Actor, "local:127.0.0.1:") {
			t.Errorf("actor without header or certificate: %q", a.Actor)
		}
	}
	want := "registration.create " + reg.KeyID + "\ncertificate.revoke " + serial + "\naccount.deactivate " + accountID
	if strings.Join(trail, "\n") != want {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(trail, "\n"), want)
	}
}

func TestAdmin_RevokeRecordsNothingWhenIssuerFails(t *testing.T) {
	e := newAdminEnv(t)
	acct, _ := e.g.mustAccount("", nil)
	serial := e.g.issue(acct, "down.example.com").SerialNumber.Text(16)
	e.g.issuer.revokeErr = errors.New("CA is down") // the CA refuses revocations

	status, raw := e.do(http.MethodPost, "certificates/"+serial+"/revoke", map[string]any{"reason": 4})
	if status != http.StatusBadGateway || !bytes.Contains(raw, []byte("CA is down")) {
		t.Fatalf("revoke with the CA down: %d %s", status, raw)
	}
	if stored, _ := e.g.store.GetCertificate(context.Background(), serial); stored.Status != storage.StatusValid {
		t.Fatalf("recorded a revocation the CA did not make: %+v", stored)
	}
	if n := len(e.auditEntries()); n != 0 {
		t.Fatalf("%d audit entries for a failed revocation", n)
	}
}

func TestAdmin_ActorPrefersClientCertificateThenHeader(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "officer.example.com", Organization: []string{"PKI"}}}
	noCN := &x509.Certificate{Subject: pkix.Name{Organization: []string{"PKI"}}}
	tests := []struct {
		name   string
		certs  []*x509.Certificate
		header string
		want   string
	}{
		{"certificate wins over header", []*x509.Certificate{cert}, "mallory", "officer.example.com"},
		{"subject without CN", []*x509.Certificate{noCN}, "", "O=PKI"},
		{"header", nil, "alice", "alice"},
		{"header cleaned", nil, "ali\nce\x00", "alice"},
		{"remote address", nil, "", "local:192.0.2.1:1234"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/acme-gateway/default/registrations", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			if tc.certs != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: tc.certs}
			}
			if tc.header != "" {
				r.Header.Set(officerHeader, tc.header)
			}
			if got := actor(r); got != tc.want {
				t.Fatalf("actor %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAdmin_GatewayInfo(t *testing.T) {
	e := newAdminEnv(t)
	var info gatewayInfo
	e.must(http.StatusOK, http.MethodGet, "", nil, &info)
	if info.Name != e.g.h.Name || info.PathPrefix != "/acme" || info.Registration != gateway.RegistrationOpen || info.Directory != "" {
		t.Fatalf("info %+v", info)
	}
	e.g.h.BaseURL = "https://acme.example.com/acme"
	e.must(http.StatusOK, http.MethodGet, "", nil, &info)
	if info.Directory != "https://acme.example.com/acme/directory" {
		t.Fatalf("info %+v", info)
	}
}

func TestAdmin_ModuleServesUnderAcmeGateway(t *testing.T) {
	info, err := caddy.GetModule("admin.api.acme_gateway")
	if err != nil {
		t.Fatal(err)
	}
	routes := info.New().(caddy.AdminRouter).Routes()
	if len(routes) != 1 || routes[0].Pattern != "/acme-gateway/" {
		t.Fatalf("routes %+v", routes)
	}
}
