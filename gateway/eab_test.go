package gateway

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// preregister stores an active registration and returns its MAC key.
func (g *gateway) preregister(kid string, domains ...string) []byte {
	g.t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	reg := &storage.Registration{
		KeyID: kid, HMACKey: key, AllowedDomains: domains,
		Status: storage.RegistrationActive, CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
	if err := g.store.CreateRegistration(context.Background(), reg); err != nil {
		g.t.Fatal(err)
	}
	return key
}

// binding makes an external account binding of the client's key.
func (c *client) binding(kid string, mac []byte, alg jose.SignatureAlgorithm, url string) json.RawMessage {
	t := c.g.t
	t.Helper()
	jwk, err := (&jose.JSONWebKey{Key: c.key.Public()}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: mac},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"kid": kid, "url": url}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(jws.FullSerialize())
}

// newAccountWith posts newAccount with the given binding (nil: none).
func (c *client) newAccountWith(eab json.RawMessage) *reply {
	c.g.t.Helper()
	payload := map[string]any{"termsOfServiceAgreed": true, "contact": []string{"mailto:ops@example.com"}}
	if eab != nil {
		payload["externalAccountBinding"] = eab
	}
	r := c.post(c.g.base+pathNewAccount, payload)
	if r.status == http.StatusCreated || r.status == http.StatusOK {
		c.kid = r.header.Get("Location")
	}
	return r
}

func (g *gateway) registration(kid string) *storage.Registration {
	g.t.Helper()
	reg, err := g.store.GetRegistration(context.Background(), kid)
	if err != nil {
		g.t.Fatal(err)
	}
	return reg
}

func (g *gateway) noAccountFor(c *client) {
	g.t.Helper()
	tp, _ := thumbprint(&jose.JSONWebKey{Key: c.key.Public()})
	if _, err := g.store.AccountByThumbprint(context.Background(), tp); !errors.Is(err, storage.ErrNotFound) {
		g.t.Fatalf("an account exists for a refused key (err %v)", err)
	}
}

func TestEAB_PreregisteredAccountIsBoundToItsRegistration(t *testing.T) {
	g := newGateway(t)
	g.h.cfg.RegistrationMode = RegistrationPreregistered
	mac := g.preregister("kid-1", "example.com")

	var dir directoryBody
	resp, err := g.srv.Client().Get(g.base + PathDirectory)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if !dir.Meta.ExternalAccountRequired {
		t.Fatal("directory does not say externalAccountRequired")
	}

	c := g.newClient()
	if r := c.newAccountWith(c.binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
		t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	reg := g.registration("kid-1")
	id := c.kid[len(g.base+"/account/"):]
	if reg.AccountID != id {
		t.Fatalf("registration bound to %q, want %q", reg.AccountID, id)
	}
	acct, _ := g.store.GetAccount(context.Background(), id)
	if acct.RegistrationID != "kid-1" {
		t.Fatalf("account registration %q", acct.RegistrationID)
	}
	// The same key coming back gets its account.
	c.kid = ""
	if r := c.newAccountWith(c.binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusOK || r.header.Get("Location") != c.kid {
		t.Fatalf("same key again: %d %s", r.status, r.body)
	}
	c.issue("cm.example.com")
}

func TestEAB_RefusedBindings(t *testing.T) {
	tests := []struct {
		name   string
		prep   func(g *gateway)
		eab    func(g *gateway, c *client, mac []byte) json.RawMessage
		typ    string
		status int
	}{
		{"without binding", nil,
			func(*gateway, *client, []byte) json.RawMessage { return nil },
			"externalAccountRequired", http.StatusForbidden},
		{"wrong MAC", nil,
			func(g *gateway, c *client, _ []byte) json.RawMessage {
				return c.binding("kid-1", make([]byte, 32), jose.HS256, g.base+pathNewAccount)
			}, "unauthorized", http.StatusForbidden},
		{"unknown key id", nil,
			func(g *gateway, c *client, mac []byte) json.RawMessage {
				return c.binding("kid-unknown", mac, jose.HS256, g.base+pathNewAccount)
			}, "unauthorized", http.StatusForbidden},
		{"expired registration", func(g *gateway) {
			reg := g.registration("kid-1")
			reg.Expires = time.Now().Add(-time.Minute)
			_ = g.store.UpdateRegistration(context.Background(), reg)
		}, func(g *gateway, c *client, mac []byte) json.RawMessage {
			return c.binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)
		}, "unauthorized", http.StatusForbidden},
		{"disabled registration", func(g *gateway) {
			reg := g.registration("kid-1")
			reg.Status = storage.RegistrationDisabled
			_ = g.store.UpdateRegistration(context.Background(), reg)
		}, func(g *gateway, c *client, mac []byte) json.RawMessage {
			return c.binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)
		}, "unauthorized", http.StatusForbidden},
		{"key id already used by another key", func(g *gateway) {
			other := g.newClient()
			if r := other.newAccountWith(other.binding("kid-1", g.registration("kid-1").HMACKey, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
				g.t.Fatalf("first binding: %d %s", r.status, r.body)
			}
		}, func(g *gateway, c *client, mac []byte) json.RawMessage {
			return c.binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)
		}, "unauthorized", http.StatusForbidden},
		{"binding for another key", nil,
			func(g *gateway, c *client, mac []byte) json.RawMessage {
				return g.newClient().binding("kid-1", mac, jose.HS256, g.base+pathNewAccount)
			}, "unauthorized", http.StatusForbidden},
		{"binding url of another resource", nil,
			func(g *gateway, c *client, mac []byte) json.RawMessage {
				return c.binding("kid-1", mac, jose.HS256, g.base+pathNewOrder)
			}, "malformed", http.StatusBadRequest},
		{"binding not a MAC", nil,
			func(g *gateway, c *client, _ []byte) json.RawMessage {
				return json.RawMessage(sign(g.t, c.key, jose.ES256, []byte(`{}`), map[jose.HeaderKey]any{"kid": "kid-1", "url": g.base + pathNewAccount}, false))
			}, "malformed", http.StatusBadRequest},
		{"binding not JSON", nil,
			func(*gateway, *client, []byte) json.RawMessage {
				return json.RawMessage(`"eyJhbGciOiJIUzI1NiJ9.e30.AAAA"`)
			},
			"malformed", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.cfg.RegistrationMode = RegistrationPreregistered
			mac := g.preregister("kid-1")
			if tt.prep != nil {
				tt.prep(g)
			}
			before := g.registration("kid-1")
			c := g.newClient()
			r := c.newAccountWith(tt.eab(g, c, mac))
			if r.status != tt.status || r.problemType() != problemNS+tt.typ {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.typ)
			}
			g.noAccountFor(c)
			if after := g.registration("kid-1"); after.Version != before.Version || after.AccountID != before.AccountID {
				t.Fatalf("registration changed: %+v -> %+v", before, after)
			}
		})
	}
}

func TestEAB_OpenModeLinksAccountWhenBindingSent(t *testing.T) {
	g := newGateway(t)
	mac := g.preregister("kid-open")
	c := g.newClient()
	if r := c.newAccountWith(c.binding("kid-open", mac, jose.HS256, g.base+pathNewAccount)); r.status != http.StatusCreated {
		t.Fatalf("newAccount: %d %s", r.status, r.body)
	}
	if g.registration("kid-open").AccountID == "" {
		t.Fatal("binding in open mode did not link the account")
	}
	plain := g.newClient()
	if r := plain.newAccountWith(nil); r.status != http.StatusCreated {
		t.Fatalf("open mode without binding: %d %s", r.status, r.body)
	}
}

func TestEAB_RegistrationLimitsNamesAtOrderAndFinalize(t *testing.T) {
	g := newGateway(t)
	mac := g.preregister("kid-d", "example.com")
	c := g.newClient()
	c.newAccountWith(c.binding("kid-d", mac, jose.HS256, g.base+pathNewAccount))

	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{
		{Type: "dns", Value: "ok.example.com"}, {Type: "dns", Value: "badexample.com"}, {Type: "dns", Value: "nexusgroup.se"},
	}})
	var p Problem
	r.decode(t, &p)
	if r.status != http.StatusBadRequest || p.Type != problemNS+"rejectedIdentifier" || len(p.Subproblems) != 2 {
		t.Fatalf("newOrder outside the registration: %d %s", r.status, r.body)
	}

	// Narrowed after the order was made: finalize checks again.
	_, o := c.orderReady("cm.example.com")
	reg := g.registration("kid-d")
	reg.AllowedDomains = []string{"other.example.com"}
	if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	csr, _ := csrFor(t, "cm.example.com")
	r = c.post(o.Finalize, map[string]string{"csr": b64(csr)})
	if r.problemType() != problemNS+"rejectedIdentifier" {
		t.Fatalf("finalize after narrowing: %d %s", r.status, r.body)
	}
	if issued, _ := g.issuer.counts(); issued != 0 {
		t.Fatalf("issued %d", issued)
	}
}

func TestEAB_DisabledRegistrationStopsChangesButNotRevocation(t *testing.T) {
	g := newGateway(t)
	mac := g.preregister("kid-x")
	c := g.newClient()
	c.newAccountWith(c.binding("kid-x", mac, jose.HS256, g.base+pathNewAccount))
	_, leaf, _ := c.issue("x.example.com")
	_, ready := c.orderReady("y.example.com")

	reg := g.registration("kid-x")
	reg.Status = storage.RegistrationDisabled
	if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	csr, _ := csrFor(t, "y.example.com")
	for name, r := range map[string]*reply{
		"newOrder":       c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "z.example.com"}}}),
		"finalize":       c.post(ready.Finalize, map[string]string{"csr": b64(csr)}),
		"account update": c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.com"}}),
		"deactivate":     c.post(c.kid, map[string]any{"status": "deactivated"}),
	} {
		if r.status != http.StatusForbidden || r.problemType() != problemNS+"unauthorized" {
			t.Errorf("%s with a disabled registration: %d %s", name, r.status, r.body)
		}
	}
	if r := c.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf), "reason": 5}); r.status != http.StatusOK {
		t.Fatalf("revoke with a disabled registration: %d %s", r.status, r.body)
	}
}

func TestEAB_SwitchToPreregisteredStopsAccountsWithoutRegistration(t *testing.T) {
	g := newGateway(t)
	c := g.newClient()
	c.register()
	_, leaf, _ := c.issue("open.example.com")
	_, ready := c.orderReady("later.example.com")

	g.h.cfg.RegistrationMode = RegistrationPreregistered
	csr, _ := csrFor(t, "later.example.com")
	for name, r := range map[string]*reply{
		"newOrder":       c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "z.example.com"}}}),
		"finalize":       c.post(ready.Finalize, map[string]string{"csr": b64(csr)}),
		"account update": c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.com"}}),
	} {
		if r.status != http.StatusForbidden || r.problemType() != problemNS+"unauthorized" {
			t.Errorf("%s without a registration in preregistered mode: %d %s", name, r.status, r.body)
		}
	}
	if r := c.post(c.kid, nil); r.status != http.StatusOK {
		t.Fatalf("reading the account: %d %s", r.status, r.body)
	}
	if r := c.post(g.base+pathRevoke, map[string]any{"certificate": b64(leaf), "reason": 5}); r.status != http.StatusOK {
		t.Fatalf("revoke without a registration in preregistered mode: %d %s", r.status, r.body)
	}
}

// Only an address an officer put on the registration goes into a
// certificate: a contact is what the client says of itself.
func TestAddAccountContactEmail_OnlyAnAddressOfTheRegistration(t *testing.T) {
	tests := []struct {
		name   string
		bound  bool
		emails []string
		want   []string
	}{
		{"contact is one of the registration's", true, []string{"pki@example.com", "ops@example.com"}, []string{"ops@example.com"}},
		{"registration has other addresses", true, []string{"pki@example.com"}, nil},
		{"registration has none", true, nil, nil},
		{"account without a registration", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.cfg.AddAccountContactEmail = true
			c := g.newClient()
			if tt.bound {
				mac := g.preregister("kid-mail")
				reg := g.registration("kid-mail")
				reg.Emails = tt.emails
				if err := g.store.UpdateRegistration(context.Background(), reg); err != nil {
					t.Fatal(err)
				}
				c.newAccountWith(c.binding("kid-mail", mac, jose.HS256, g.base+pathNewAccount))
			} else {
				c.newAccountWith(nil)
			}
			_, leaf, _ := c.issue("mail.example.com")
			if got := parseDER(t, leaf).EmailAddresses; !slices.Equal(got, tt.want) {
				t.Fatalf("email SANs %q, want %q", got, tt.want)
			}
		})
	}
}

func parseDER(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEAB_AccountDoesNotInheritARecreatedKeyID(t *testing.T) {
	g := newGateway(t)
	mac := g.preregister("kid-r", "example.com")
	c := g.newClient()
	c.newAccountWith(c.binding("kid-r", mac, jose.HS256, g.base+pathNewAccount))
	ctx := context.Background()
	if err := g.store.DeleteRegistration(ctx, "kid-r"); err != nil {
		t.Fatal(err)
	}
	g.preregister("kid-r", "other.example.net") // the key id, given to someone else
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": []identifier{{Type: "dns", Value: "www.other.example.net"}}})
	if r.status != http.StatusForbidden || r.problemType() != problemNS+"unauthorized" {
		t.Fatalf("old account with a recreated key id: %d %s", r.status, r.body)
	}
}

func TestEAB_LongMACAlgorithmWithShortKeySaysSo(t *testing.T) {
	g := newGateway(t)
	g.preregister("kid-512")
	c := g.newClient()
	long := make([]byte, 64) // go-jose signs HS512 only with 512-bit keys
	r := c.newAccountWith(c.binding("kid-512", long, jose.HS512, g.base+pathNewAccount))
	var p Problem
	r.decode(t, &p)
	if r.status != http.StatusBadRequest || p.Type != problemNS+"malformed" || !strings.Contains(p.Detail, "use HS256") {
		t.Fatalf("HS512 with a 256-bit registration key: %d %s", r.status, r.body)
	}
	g.noAccountFor(c)
}
