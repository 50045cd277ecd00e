package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// adminClient is a registration officer on Caddy's admin endpoint: the
// gateway's API under /acme-gateway/<name>/, as plain HTTP requests.
type adminClient struct {
	base string // http://<admin address>/acme-gateway/<name>
	hc   *http.Client
}

// officerName labels this suite's admin requests in the audit trail.
const officerName = "integration-officer"

// admin is the officer API of the gateway named "default".
func (g *gateway) admin() *adminClient {
	return &adminClient{
		base: "http://" + g.AdminAddr + "/acme-gateway/default",
		hc:   &http.Client{Timeout: 10 * time.Second},
	}
}

// registrationJSON is a registration as the admin API shows it.
type registrationJSON struct {
	KeyID          string     `json:"key_id"`
	HMACKey        string     `json:"hmac_key"`
	Description    string     `json:"description"`
	AllowedDomains []string   `json:"allowed_domains"`
	Expires        *time.Time `json:"expires"`
	Status         string     `json:"status"`
	AccountID      string     `json:"account_id"`
}

// accountJSON is an account as the admin API shows it.
type accountJSON struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	RegistrationID string `json:"registration_id"`
}

// certificateJSON is a certificate as the admin API (and the CLI's
// --json) shows it.
type certificateJSON struct {
	Serial           string   `json:"serial"`
	Status           string   `json:"status"`
	Names            []string `json:"names"`
	AccountID        string   `json:"account_id"`
	Profile          string   `json:"profile"`
	RevocationReason *int     `json:"revocation_reason"`
	Replaces         string   `json:"replaces"`
	ReplacedBy       string   `json:"replaced_by"`
}

// auditJSON is one audit entry.
type auditJSON struct {
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail"`
}

// do sends one request, with body as JSON when it is not nil, and returns
// the status and the body.
func (a *adminClient) do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Acme-Gateway-Officer", officerName)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// mustDo is do that fails the test unless the answer has status want; it
// decodes the body into out when out is not nil.
func (a *adminClient) mustDo(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	status, raw := a.do(t, method, path, body)
	if status != want {
		t.Fatalf("admin %s %s: status %d, want %d: %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("admin %s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// createRegistration creates a pre-registration; the answer holds its
// HMAC key, which nothing shows again.
func (a *adminClient) createRegistration(t testing.TB, body map[string]any) registrationJSON {
	t.Helper()
	var reg registrationJSON
	a.mustDo(t, http.MethodPost, "/registrations", body, http.StatusCreated, &reg)
	if reg.KeyID == "" || reg.HMACKey == "" || reg.Status != "active" {
		t.Fatalf("new registration: key id %q, HMAC key set %v, status %q", reg.KeyID, reg.HMACKey != "", reg.Status)
	}
	return reg
}

func (a *adminClient) patchRegistration(t testing.TB, kid string, body map[string]any) registrationJSON {
	t.Helper()
	var reg registrationJSON
	a.mustDo(t, http.MethodPatch, "/registrations/"+url.PathEscape(kid), body, http.StatusOK, &reg)
	return reg
}

func (a *adminClient) getRegistration(t testing.TB, kid string) registrationJSON {
	t.Helper()
	var reg registrationJSON
	a.mustDo(t, http.MethodGet, "/registrations/"+url.PathEscape(kid), nil, http.StatusOK, &reg)
	if reg.HMACKey != "" {
		t.Fatalf("registration %s shows its HMAC key again", kid)
	}
	return reg
}

// accounts lists the accounts matching query (e.g. "registration=<kid>").
func (a *adminClient) accounts(t testing.TB, query string) []accountJSON {
	t.Helper()
	var page struct {
		Accounts []accountJSON `json:"accounts"`
	}
	a.mustDo(t, http.MethodGet, "/accounts?"+query, nil, http.StatusOK, &page)
	return page.Accounts
}

// certificates lists the certificates matching query (e.g. "account=<id>").
func (a *adminClient) certificates(t testing.TB, query string) []certificateJSON {
	t.Helper()
	var page struct {
		Certificates []certificateJSON `json:"certificates"`
	}
	a.mustDo(t, http.MethodGet, "/certificates?"+query, nil, http.StatusOK, &page)
	return page.Certificates
}

// registrations lists the first 500 registrations.
func (a *adminClient) registrations(t testing.TB) []registrationJSON {
	t.Helper()
	var page struct {
		Registrations []registrationJSON `json:"registrations"`
	}
	a.mustDo(t, http.MethodGet, "/registrations?limit=500", nil, http.StatusOK, &page)
	return page.Registrations
}

// audit is the whole audit trail, oldest first.
func (a *adminClient) audit(t testing.TB) []auditJSON {
	t.Helper()
	var page struct {
		Audit []auditJSON `json:"audit"`
	}
	a.mustDo(t, http.MethodGet, "/audit?limit=500", nil, http.StatusOK, &page)
	return page.Audit
}

// certificate is the certificate with serial.
func (a *adminClient) certificate(t testing.TB, serial string) certificateJSON {
	t.Helper()
	var c certificateJSON
	a.mustDo(t, http.MethodGet, "/certificates/"+serial, nil, http.StatusOK, &c)
	return c
}
