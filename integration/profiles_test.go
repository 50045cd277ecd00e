package integration

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// localProfiles are two profiles of issuer local that differ in lifetime
// and extended key usages; "long" is the default.
const localProfiles = `
	profile short {
		description    "One hour, TLS servers only"
		lifetime       1h
		ext_key_usages server_auth
	}
	profile long {
		description "Three days"
		lifetime    72h
	}
	default_profile long`

const invalidProfile = "urn:ietf:params:acme:error:invalidProfile"

// directoryProfiles reads the directory's meta.profiles.
func directoryProfiles(t testing.TB, g *gateway) map[string]string {
	t.Helper()
	resp, err := g.HTTPClient().Get(g.Directory)
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
	return dir.Meta.Profiles
}

// legoObtainUnder is legoObtain under profile.
func legoObtainUnder(client *lego.Client, t testing.TB, profile string, names ...string) (*certificate.Resource, error) {
	return client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: names, Bundle: true, KeyType: certcrypto.EC256, Profile: profile,
	})
}

// wantLifetime fails unless leaf is valid for exactly d.
func wantLifetime(t testing.TB, leaf *x509.Certificate, d time.Duration) {
	t.Helper()
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != d {
		t.Fatalf("certificate for %v valid %s, want %s", leaf.DNSNames, got, d)
	}
}

// wantStoredProfile fails unless the gateway's record of leaf says profile.
func wantStoredProfile(t testing.TB, g *gateway, leaf *x509.Certificate, profile string) {
	t.Helper()
	certs := g.admin().certificates(t, "serial="+leaf.SerialNumber.Text(16))
	if len(certs) != 1 || certs[0].Profile != profile {
		t.Fatalf("stored certificate %x: %+v, want profile %q", leaf.SerialNumber, certs, profile)
	}
}

// lego obtains certificates under two profiles of issuer local, whose
// lifetimes and usages differ as configured; the directory offers both,
// the order and the stored certificate carry the profile, and an unknown
// profile is invalidProfile.
func TestProfiles_LegoObtainsUnderTwoLocalProfiles(t *testing.T) {
	e := startACMEEnvWith(t, localProfiles)
	want := map[string]string{"short": "One hour, TLS servers only", "long": "Three days"}
	if got := directoryProfiles(t, e.G); !maps.Equal(got, want) {
		t.Fatalf("meta.profiles %v, want %v", got, want)
	}
	client, user, _ := legoRegister(t, e, "http-01")

	res, err := legoObtainUnder(client, t, "short", "short.example.com")
	if err != nil {
		t.Fatalf("obtaining under short: %v", err)
	}
	short := checkChain(t, e.G, parseChain(t, res.Certificate), "short.example.com")
	wantLifetime(t, short, time.Hour)
	if !slices.Equal(short.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Fatalf("short: extended key usages %v, want server auth only", short.ExtKeyUsage)
	}
	wantStoredProfile(t, e.G, short, "short")

	res, err = legoObtainUnder(client, t, "long", "long.example.com")
	if err != nil {
		t.Fatalf("obtaining under long: %v", err)
	}
	long := checkChain(t, e.G, parseChain(t, res.Certificate), "long.example.com")
	wantLifetime(t, long, 72*time.Hour)
	if !slices.Equal(long.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("long: extended key usages %v, want the default server and client auth", long.ExtKeyUsage)
	}
	wantStoredProfile(t, e.G, long, "long")

	// The order object says its profile; one naming none takes the default.
	core, err := api.New(e.G.HTTPClient(), "", e.G.Directory, user.reg.Location, user.key)
	if err != nil {
		t.Fatal(err)
	}
	for profile, wantProfile := range map[string]string{"short": "short", "": "long"} {
		order, err := core.Orders.New(t.Context(), []string{"order.example.com"}, &api.OrderOptions{Profile: profile})
		if err != nil || order.Profile != wantProfile {
			t.Fatalf("order naming profile %q: profile %q (%v), want %q", profile, order.Profile, err, wantProfile)
		}
	}

	_, err = legoObtainUnder(client, t, "medium", "medium.example.com")
	wantLegoProblem(t, err, invalidProfile)
}

// A registration that allows only some profiles: an order under another
// is invalidProfile, one naming none takes the first it allows; the
// officer's change is in the audit trail.
func TestProfiles_RegistrationRestrictsProfiles(t *testing.T) {
	dns := startDNS(t)
	resp := startHTTP01(t)
	e := newACMEEnv(startCaddy(t, preregistered(dns, resp.Port())+localProfiles), dns, resp)
	officer := e.G.admin()
	if status, body := officer.do(t, http.MethodPost, "/registrations", map[string]any{"profiles": []string{"medium"}}); status != http.StatusBadRequest {
		t.Fatalf("registration allowing an unknown profile: %d %s, want 400", status, body)
	}
	reg := officer.createRegistration(t, map[string]any{"profiles": []string{"short"}})

	user := &legoUser{key: newKey(t)}
	client, _ := legoClient(t, e, user, "http-01")
	acct, err := client.Registration.RegisterWithExternalAccountBinding(t.Context(), registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: reg.KeyID, HmacEncoded: reg.HMACKey,
	})
	if err != nil {
		t.Fatalf("registering with the binding: %v", err)
	}
	user.reg = acct

	_, err = legoObtainUnder(client, t, "long", "long.example.com")
	wantLegoProblem(t, err, invalidProfile)
	res, err := legoObtainUnder(client, t, "", "default.example.com")
	if err != nil {
		t.Fatalf("obtaining under no profile: %v", err)
	}
	leaf := checkChain(t, e.G, parseChain(t, res.Certificate), "default.example.com")
	wantLifetime(t, leaf, time.Hour) // short, not the gateway's default long
	wantStoredProfile(t, e.G, leaf, "short")

	officer.patchRegistration(t, reg.KeyID, map[string]any{"profiles": []string{"long"}})
	if res, err = legoObtainUnder(client, t, "long", "long.example.com"); err != nil {
		t.Fatalf("obtaining under long once allowed: %v", err)
	}
	wantLifetime(t, parseChain(t, res.Certificate)[0], 72*time.Hour)

	var audit struct {
		Audit []auditJSON `json:"audit"`
	}
	officer.mustDo(t, http.MethodGet, "/audit", nil, http.StatusOK, &audit)
	var trail []string
	for _, a := range audit.Audit {
		if a.Target == reg.KeyID {
			trail = append(trail, a.Action+" "+string(a.Detail))
		}
	}
	joined := strings.Join(trail, "\n")
	if !strings.Contains(joined, `"profiles":["short"]`) || !strings.Contains(joined, `"profiles":{"from":["short"],"to":["long"]}`) {
		t.Fatalf("audit trail of %s lacks the profiles:\n%s", reg.KeyID, joined)
	}
}

// Under issuer cm a profile is a procedure endpoint: acmez obtains under
// two profiles, each issued through its own procedure. A profile's
// procedure wins over the one its account's registration names; a profile
// without one leaves the registration's.
func TestProfiles_CMProfilesPickProcedureEndpoints(t *testing.T) {
	const clientProc = "ACME TLS Client"
	srv := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{
		cmtest.DefaultProcedure: {}, clientProc: {},
	}})
	ci := cmIssuer{Procedures: []string{cmtest.DefaultProcedure, clientProc}}
	e := startACMEEnvWith(t, ci.block(t, srv)+`
		profile server {
			description "TLS servers"
			procedure   "`+cmtest.DefaultProcedure+`"
		}
		profile client {
			description "TLS clients"
			procedure   "`+clientProc+`"
		}
		profile plain {
			description "The registration's procedure, or the default"
		}`)
	c, _ := acmezClient(e, acme.ChallengeTypeHTTP01)
	acct := acmezAccount(t, c)

	obtain := func(acct acme.Account, profile, name string) {
		t.Helper()
		csr, err := acmez.NewCSR(newKey(t), []string{name})
		if err != nil {
			t.Fatal(err)
		}
		params, err := acmez.OrderParametersFromCSR(acct, csr)
		if err != nil {
			t.Fatal(err)
		}
		params.Profile = profile
		certs, err := c.ObtainCertificate(t.Context(), params)
		if err != nil {
			t.Fatalf("obtaining %s under %s: %v", name, profile, err)
		}
		leaf := checkCMChain(t, srv, e.G, parseChain(t, certs[0].ChainPEM), name)
		wantStoredProfile(t, e.G, leaf, profile)
	}
	wantIssuedBy := func(what string, server, client int) {
		t.Helper()
		if got := srv.Counts().IssuedBy; got[cmtest.DefaultProcedure] != server || got[clientProc] != client {
			t.Fatalf("%s: CM issued %v by procedure, want %d through %s and %d through %s",
				what, got, server, cmtest.DefaultProcedure, client, clientProc)
		}
	}
	obtain(acct, "client", "client.example.com")
	wantIssuedBy("profile client", 0, 1)
	obtain(acct, "server", "server.example.com")
	wantIssuedBy("profile server", 1, 1)

	// An account whose registration names the client procedure (an open
	// gateway links an account made with a binding to its registration).
	reg := e.G.admin().createRegistration(t, map[string]any{"procedure": clientProc})
	bound := acme.Account{Contact: []string{"mailto:ops@example.com"}, TermsOfServiceAgreed: true, PrivateKey: newKey(t)}
	if err := bound.SetExternalAccountBinding(t.Context(), c.Client, acme.EAB{KeyID: reg.KeyID, MACKey: reg.HMACKey}); err != nil {
		t.Fatal(err)
	}
	bound, err := c.NewAccount(t.Context(), bound)
	if err != nil {
		t.Fatalf("new account with the binding: %v", err)
	}
	obtain(bound, "server", "server2.example.com")
	wantIssuedBy("profile server over the registration's procedure", 2, 1)
	obtain(bound, "plain", "plain.example.com")
	wantIssuedBy("profile plain, the registration's procedure", 2, 2)
}

// Profiles an issuer cannot honour are refused at start, saying why.
func TestProfiles_RefusedAtStart(t *testing.T) {
	srv := cmtest.New(t, cmtest.Options{})
	cm := cmIssuer{}.block(t, srv)
	for _, tc := range []struct {
		name, directives, want string
	}{
		{"local: a lifetime beyond the intermediate", "profile year {\nlifetime 8760h\n}", `profile "year": lifetime 8760h0m0s is beyond the validity of CA "local"'s intermediate`},
		{"local: a procedure", "profile p {\nprocedure tls\n}", "issuer local has no procedures"},
		{"local: an unknown usage", "profile p {\next_key_usages code_signing\n}", `extended key usage "code_signing" is not one of client_auth, server_auth`},
		{"cm: a lifetime", cm + "\nprofile p {\nlifetime 1h\n}", "lifetime and key usages cannot be set with issuer cm"},
		{"cm: an unknown procedure", cm + "\nprofile p {\nprocedure \"No Such Procedure\"\n}", `procedure "No Such Procedure" is not one of the cm issuer's`},
		{"an unknown default", "profile a\ndefault_profile b", `default profile "b" is not one of the profiles`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadGatewayConfig(t, "storage memory\n"+tc.directives)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loading: %v, want an error saying %s", err, tc.want)
			}
		})
	}
}

// loadGatewayConfig loads a Caddy whose one site's handler is
// `acme_gateway { <directives> }` and returns the error of loading it.
func loadGatewayConfig(t testing.TB, directives string) error {
	t.Helper()
	caddyfile := fmt.Sprintf("%shttps://localhost:%d {\n\ttls internal\n\tacme_gateway {\n%s\n\t}\n}\n",
		globalOptions(t, "off", filepath.Join(t.TempDir(), "storage"), ""), freePort(t), directives)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	err = caddy.Load(cfg, true)
	t.Cleanup(func() { _ = caddy.Stop() })
	return err
}
