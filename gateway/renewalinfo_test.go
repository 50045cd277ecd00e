package gateway

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// getRenewalInfo GETs the renewal information of certID from the
// directory's renewalInfo resource.
func (g *gateway) getRenewalInfo(certID string) (*reply, renewalInfoBody) {
	g.t.Helper()
	resp, err := g.srv.Client().Get(g.directory().RenewalInfo + "/" + certID)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &reply{status: resp.StatusCode, header: resp.Header, body: body}
	var info renewalInfoBody
	if r.status == http.StatusOK {
		r.decode(g.t, &info)
	}
	return r, info
}

func (g *gateway) directory() directoryBody {
	g.t.Helper()
	resp, err := g.srv.Client().Get(g.base + PathDirectory)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var d directoryBody
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		g.t.Fatal(err)
	}
	return d
}

// issueLeaf issues a certificate for names and returns its parsed leaf.
func (c *client) issueLeaf(names ...string) *x509.Certificate {
	c.g.t.Helper()
	_, der, _ := c.issue(names...)
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		c.g.t.Fatal(err)
	}
	return leaf
}

func (g *gateway) storedCertificate(leaf *x509.Certificate) *storage.Certificate {
	g.t.Helper()
	c, err := g.store.GetCertificate(g.t.Context(), leaf.SerialNumber.Text(16))
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func TestRenewalInfo_DefaultWindowWithRetryAfter(t *testing.T) {
	g := newGateway(t)
	if got, want := g.directory().RenewalInfo, g.base+"/renewal-info"; got != want {
		t.Fatalf("directory renewalInfo = %q, want %q", got, want)
	}
	c := g.newClient()
	c.register()
	leaf := c.issueLeaf("ari.example.com")
	r, info := g.getRenewalInfo(certIDOf(leaf))
	if r.status != http.StatusOK {
		t.Fatalf("renewalInfo: %d %s", r.status, r.body)
	}
	want := defaultWindow(g.storedCertificate(leaf))
	if !info.SuggestedWindow.Start.Equal(want.Start) || !info.SuggestedWindow.End.Equal(want.End) || info.ExplanationURL != "" {
		t.Fatalf("renewalInfo = %+v, want the default window %+v", info, want)
	}
	if ra := r.header.Get("Retry-After"); ra != strconv.Itoa(int(defaultRenewalInfoRetryAfter/time.Second)) {
		t.Errorf("Retry-After = %q, want the default of %s", ra, defaultRenewalInfoRetryAfter)
	}
	// The same window on every request.
	if _, again := g.getRenewalInfo(certIDOf(leaf)); again != info {
		t.Errorf("second answer %+v differs from the first %+v", again, info)
	}
}

func TestRenewalInfo_RefusesMalformedUnknownAndWrongIssuer(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	leaf := c.issueLeaf("ari.example.com")
	enc := base64.RawURLEncoding.EncodeToString
	serial := certIDOf(leaf)[len(enc(leaf.AuthorityKeyId))+1:]
	tests := []struct {
		name, certID string
		status       int
	}{
		{"malformed", "not-a-cert-id", http.StatusBadRequest},
		{"padded", base64.URLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + serial, http.StatusBadRequest},
		{"unknown serial", enc(leaf.AuthorityKeyId) + "." + enc([]byte{0x01, 0x02, 0x03}), http.StatusNotFound},
		{"wrong AKI", enc([]byte("another issuer key")) + "." + serial, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := g.getRenewalInfo(tc.certID)
			if r.status != tc.status || r.problemType() != ProblemMalformed.URN() {
				t.Fatalf("renewalInfo(%s) = %d %s, want %d malformed", tc.certID, r.status, r.body, tc.status)
			}
		})
	}
}

// Each scope of rule moves the window of the certificates in it that were
// issued before the rule, and of no other.
func TestRenewalInfo_RuleScopes(t *testing.T) {
	g := newGateway(t)
	alice, bob := g.newClient(), g.newClient()
	alice.register()
	bob.register()
	aliceLeaf := alice.issueLeaf("alice.example.com")
	aliceOther := alice.issueLeaf("alice2.example.com")
	bobLeaf := bob.issueLeaf("bob.example.com")
	aliceCert := g.storedCertificate(aliceLeaf)

	// Bind bob's account to a registration, as external account binding does.
	ctx := t.Context()
	bobAcct, err := g.store.GetAccount(ctx, g.storedCertificate(bobLeaf).AccountID)
	if err != nil {
		t.Fatal(err)
	}
	bobAcct.RegistrationID = "bob-kid"
	if err := g.store.UpdateAccount(ctx, bobAcct); err != nil {
		t.Fatal(err)
	}

	moved := func(leaf *x509.Certificate) string {
		t.Helper()
		r, info := g.getRenewalInfo(certIDOf(leaf))
		if r.status != http.StatusOK {
			t.Fatalf("renewalInfo: %d %s", r.status, r.body)
		}
		return info.ExplanationURL
	}
	rule := func(kind, value string) string {
		t.Helper()
		now := time.Now()
		url := "https://example.com/" + kind
		err := g.store.CreateRenewalRule(ctx, &storage.RenewalRule{ID: NewID(),
			RenewalScope: storage.RenewalScope{Kind: kind, Value: value},
			WindowStart:  now.Add(-time.Hour), WindowEnd: now, ExplanationURL: url, CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return url
	}
	leaves := []*x509.Certificate{aliceLeaf, aliceOther, bobLeaf}
	expect := func(want ...string) {
		t.Helper()
		for i, leaf := range leaves {
			if got := moved(leaf); got != want[i] {
				t.Errorf("certificate %d (%v) explanationURL = %q, want %q", i, leaf.DNSNames, got, want[i])
			}
		}
	}
	expect("", "", "")
	certURL := rule(storage.RenewalScopeCertificate, aliceCert.Serial)
	expect(certURL, "", "")
	regURL := rule(storage.RenewalScopeRegistration, "bob-kid")
	expect(certURL, "", regURL)
	acctURL := rule(storage.RenewalScopeAccount, aliceCert.AccountID)
	expect(acctURL, acctURL, regURL) // the latest rule wins
	issuerURL := rule(storage.RenewalScopeIssuer, "")
	expect(issuerURL, issuerURL, issuerURL)

	// A window moved by a rule is the rule's.
	_, info := g.getRenewalInfo(certIDOf(aliceLeaf))
	if !info.SuggestedWindow.End.Before(time.Now()) {
		t.Errorf("moved window ends %s, want in the past", info.SuggestedWindow.End)
	}
	// A certificate issued after the rules keeps its own window.
	fresh := alice.issueLeaf("alice.example.com")
	r, info := g.getRenewalInfo(certIDOf(fresh))
	want := defaultWindow(g.storedCertificate(fresh))
	if r.status != http.StatusOK || info.ExplanationURL != "" || !info.SuggestedWindow.Start.Equal(want.Start) {
		t.Fatalf("renewalInfo of a certificate issued after the rules = %d %+v, want its own window %+v", r.status, info, want)
	}
}

// A rule with a window to come, made before a certificate is revoked, does
// not keep its clients waiting: the window of a revoked certificate ended
// when it was revoked.
func TestRenewalInfo_RevocationWinsOverAnEarlierRule(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	leaf := c.issueLeaf("revoked.example.com")
	ctx := t.Context()
	now := time.Now()
	err := g.store.CreateRenewalRule(ctx, &storage.RenewalRule{ID: NewID(),
		RenewalScope: storage.RenewalScope{Kind: storage.RenewalScopeIssuer},
		WindowStart:  now.Add(30 * time.Minute), WindowEnd: now.Add(40 * time.Minute), CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	cert := g.storedCertificate(leaf)
	CertificateRevoked(cert, 0, time.Now())
	if err := g.store.UpdateCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	r, info := g.getRenewalInfo(certIDOf(leaf))
	want := revokedWindow(cert)
	if r.status != http.StatusOK || !info.SuggestedWindow.End.Equal(want.End) || info.ExplanationURL != "" {
		t.Fatalf("renewalInfo of a revoked certificate = %d %+v, want its window ended at revocation %+v", r.status, info, want)
	}
}
