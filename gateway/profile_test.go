package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"maps"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// requestRecorder is the test issuer, keeping the last request it got.
type requestRecorder struct {
	*testIssuer
	mu   sync.Mutex
	last IssueRequest
}

func (r *requestRecorder) Issue(ctx context.Context, req *IssueRequest) ([]*x509.Certificate, error) {
	r.mu.Lock()
	r.last = *req
	r.mu.Unlock()
	return r.testIssuer.Issue(ctx, req)
}

func (r *requestRecorder) lastRequest() IssueRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// profileGateway is a gateway offering a "short" and a "long" profile,
// "long" the default, "short" issuing through procedure "fast".
func profileGateway(t *testing.T) (*gateway, *requestRecorder) {
	g := newGateway(t)
	rec := &requestRecorder{testIssuer: g.issuer}
	g.h.issuer = rec
	g.h.cfg.Profiles = []Profile{
		{Name: "long", Description: "a day", Lifetime: 24 * time.Hour},
		{Name: "short", Description: "an hour", Lifetime: time.Hour, Procedure: "fast",
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
	g.h.cfg.DefaultProfile = "long"
	return g, rec
}

func TestProfiles_DirectoryOffersThemWithDescriptions(t *testing.T) {
	g, _ := profileGateway(t)
	resp, err := g.srv.Client().Get(g.base + PathDirectory)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct {
		Meta struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"long": "a day", "short": "an hour"}; !maps.Equal(dir.Meta.Profiles, want) {
		t.Fatalf("meta.profiles = %v, want %v", dir.Meta.Profiles, want)
	}
}

func TestProfiles_OrderIsIssuedUnderItsProfile(t *testing.T) {
	g, rec := profileGateway(t)
	c := g.newClient()
	c.register()
	url, o := c.orderReadyWith(map[string]any{"identifiers": dnsIDs("short.example.com"), "profile": "short"})
	if o.Profile != "short" {
		t.Fatalf("order shows profile %q, want short", o.Profile)
	}
	stored, err := g.store.GetOrder(context.Background(), path.Base(url))
	if err != nil || stored.Profile != "short" {
		t.Fatalf("stored order profile %q (%v), want short", stored.Profile, err)
	}
	c.issue("default.example.com") // an order naming no profile: the default's
	if got := rec.lastRequest(); got.Profile != "long" || got.Lifetime != 24*time.Hour || got.Procedure != "" {
		t.Fatalf("an order naming no profile was issued with %+v, want the default profile long", got)
	}
}

func TestProfiles_FinalizeUsesTheProfilesSettingsAndRecordsIt(t *testing.T) {
	g, rec := profileGateway(t)
	c := g.newClient()
	c.register()
	url, o := c.orderReadyWith(map[string]any{"identifiers": dnsIDs("short.example.com"), "profile": "short"})
	csr, _ := csrFor(t, "short.example.com")
	if r := c.post(o.Finalize, map[string]string{"csr": b64(csr)}); r.status != http.StatusOK {
		t.Fatalf("finalize: %d %s", r.status, r.body)
	}
	got := rec.lastRequest()
	if got.Profile != "short" || got.Lifetime != time.Hour || got.Procedure != "fast" ||
		got.KeyUsage != x509.KeyUsageDigitalSignature || len(got.ExtKeyUsage) != 1 || got.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("issued with %+v, want profile short's settings", got)
	}
	c.post(url, nil).decode(t, &o)
	cert, err := g.store.GetCertificate(context.Background(), path.Base(o.Certificate))
	if err != nil || cert.Profile != "short" {
		t.Fatalf("stored certificate profile %q (%v), want short", cert.Profile, err)
	}
}

// A profile's procedure wins over the registration's; a profile without
// one leaves the registration's.
func TestProfiles_ProcedureOfProfileWinsOverRegistrations(t *testing.T) {
	g, rec := profileGateway(t)
	mac := g.preregister("kid-p", "example.com")
	reg := g.registration("kid-p")
	reg.Procedure = "registered"
	if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	c := g.newClient()
	if r := c.newAccountWith(c.binding("kid-p", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
		t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	c.issue("www.example.com") // the default profile, long, names no procedure
	if got := rec.lastRequest(); got.Procedure != "registered" {
		t.Fatalf("profile long: procedure %q, want the registration's", got.Procedure)
	}
	req := &IssueRequest{Procedure: "registered"}
	g.h.addProfile(req, &storage.Order{Profile: "short"})
	if req.Procedure != "fast" {
		t.Fatalf("profile short: procedure %q, want the profile's fast", req.Procedure)
	}
}

func TestProfiles_InvalidProfileRefusals(t *testing.T) {
	g, _ := profileGateway(t)
	mac := g.preregister("kid-r", "example.com")
	reg := g.registration("kid-r")
	reg.Profiles = []string{"short"}
	if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	restricted := g.newClient()
	if r := restricted.newAccountWith(restricted.binding("kid-r", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
		t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	open := g.newClient()
	open.register()

	for _, tc := range []struct {
		name    string
		c       *client
		profile string
		want    string // the order's profile, or "" for invalidProfile
	}{
		{"unknown profile", open, "nope", ""},
		{"registration forbids it", restricted, "long", ""},
		{"registration allows it", restricted, "short", "short"},
		{"none named, the default forbidden: the registration's first", restricted, "", "short"},
		{"none named: the default", open, "", "long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := map[string]any{"identifiers": dnsIDs("www.example.com")}
			if tc.profile != "" {
				payload["profile"] = tc.profile
			}
			r := tc.c.post(g.base+pathNewOrder, payload)
			if tc.want == "" {
				if r.status != http.StatusBadRequest || r.problemType() != ProblemInvalidProfile.URN() {
					t.Fatalf("newOrder: %d %s, want 400 invalidProfile", r.status, r.body)
				}
				return
			}
			var o orderBody
			r.decode(t, &o)
			if r.status != http.StatusCreated || o.Profile != tc.want {
				t.Fatalf("newOrder: %d %s, want profile %q", r.status, r.body, tc.want)
			}
		})
	}
}

// Without profiles configured, an order naming one is refused and the
// directory offers none.
func TestProfiles_NoneConfiguredRefusesAProfile(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("www.example.com"), "profile": "short"})
	if r.problemType() != ProblemInvalidProfile.URN() {
		t.Fatalf("newOrder: %d %s, want invalidProfile", r.status, r.body)
	}
}

func TestNew_RefusesADefaultProfileNotConfigured(t *testing.T) {
	if err := CheckProfiles([]Profile{{Name: "a"}}, "b"); err == nil {
		t.Fatal("default profile b accepted among [a]")
	}
	if err := CheckProfiles([]Profile{{Name: "a"}, {Name: "a"}}, ""); err == nil {
		t.Fatal("profile a twice accepted")
	}
}

// Finalize asks again: an order whose profile was since removed from the
// configuration, or from the account's registration, is refused.
func TestProfiles_FinalizeRefusesAProfileNoLongerAllowed(t *testing.T) {
	g, _ := profileGateway(t)
	mac := g.preregister("kid-f", "example.com")
	c := g.newClient()
	if r := c.newAccountWith(c.binding("kid-f", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
		t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	finalize := func(o orderBody) *reply {
		csr, _ := csrFor(t, "www.example.com")
		return c.post(o.Finalize, map[string]string{"csr": b64(csr)})
	}
	_, short := c.orderReadyWith(map[string]any{"identifiers": dnsIDs("www.example.com"), "profile": "short"})
	_, long := c.orderReadyWith(map[string]any{"identifiers": dnsIDs("www.example.com"), "profile": "long"})

	reg := g.registration("kid-f")
	reg.Profiles = []string{"long"}
	if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	if r := finalize(short); r.problemType() != ProblemInvalidProfile.URN() {
		t.Fatalf("finalize under a profile the registration no longer allows: %d %s", r.status, r.body)
	}
	g.h.cfg.Profiles = g.h.cfg.Profiles[1:] // long is gone
	if r := finalize(long); r.problemType() != ProblemInvalidProfile.URN() {
		t.Fatalf("finalize under a profile no longer offered: %d %s", r.status, r.body)
	}
}

// An order placed before the gateway offered profiles has none; once it
// offers them, finalize refuses it as it refuses a removed profile: the
// client places a new order, under a profile.
func TestProfiles_FinalizeRefusesAnOrderWithoutProfileOnceProfilesAreOffered(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	_, o := c.orderReadyWith(map[string]any{"identifiers": dnsIDs("www.example.com")})
	if o.Profile != "" {
		t.Fatalf("order placed without profiles configured has profile %q", o.Profile)
	}
	g.h.cfg.Profiles = []Profile{{Name: "long", Lifetime: 24 * time.Hour}}
	g.h.cfg.DefaultProfile = "long"
	csr, _ := csrFor(t, "www.example.com")
	r := c.post(o.Finalize, map[string]string{"csr": b64(csr)})
	if r.status != http.StatusBadRequest || r.problemType() != ProblemInvalidProfile.URN() {
		t.Fatalf("finalize of an order without profile once profiles are offered: %d %s, want 400 invalidProfile", r.status, r.body)
	}
}
