package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// renewalInfoJSON is an RFC 9773 renewalInfo answer.
type renewalInfoJSON struct {
	SuggestedWindow struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL"`
}

// getRenewalInfoAt GETs url (a renewalInfo resource at one instance).
func getRenewalInfoAt(t *testing.T, hc *http.Client, url string) renewalInfoJSON {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var info renewalInfoJSON
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return info
}

// Two Caddy processes serving one gateway on one PostgreSQL answer the
// same window for a certificate, and an officer's rule made at one's admin
// API is answered at once by the other.
func TestMultiInstance_RenewalRuleMadeAtOneIsAnsweredByTheOther(t *testing.T) {
	e := startTwoInstances(t)
	g := e.Front.G
	hc := g.HTTPClient()
	c, _ := acmezClient(e.Front, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	chain, _ := acmezObtain(t, c, acct, "mi-ari.example.com")
	leaf := chain[0]
	certID, err := acme.ARIUniqueIdentifier(leaf)
	if err != nil {
		t.Fatal(err)
	}
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	resp, err := hc.Get(g.Directory)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil || dir.RenewalInfo != e.BaseURL+"/renewal-info" {
		t.Fatalf("directory renewalInfo %q (%v), want %s/renewal-info", dir.RenewalInfo, err, e.BaseURL)
	}
	at := func(i int) renewalInfoJSON {
		t.Helper()
		return getRenewalInfoAt(t, hc, e.direct(i, dir.RenewalInfo+"/"+certID))
	}
	if a, b := at(0), at(1); a != b || a.ExplanationURL != "" || !a.SuggestedWindow.Start.After(time.Now()) {
		t.Fatalf("the instances answer %+v and %+v, want one window ahead", a, b)
	}

	admin0 := &adminClient{base: "http://" + e.Admins[0] + "/acme-gateway/default", hc: &http.Client{Timeout: 10 * time.Second}}
	admin0.mustDo(t, http.MethodPost, "/renewal-rules", map[string]any{
		"scope": "issuer", "explanation_url": "https://example.com/ca-incident",
	}, http.StatusCreated, nil)
	if b := at(1); b.ExplanationURL != "https://example.com/ca-incident" || b.SuggestedWindow.End.After(time.Now()) {
		t.Fatalf("the other instance answers %+v after the rule, want the moved window", b)
	}
	if a, b := at(0), at(1); a != b {
		t.Fatalf("the instances answer %+v and %+v after the rule", a, b)
	}
}
