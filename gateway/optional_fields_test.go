package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Optional fields sent empty mean what leaving them out means (payload.go):
// these tests send each optional field of every decoded object with its
// zero or empty value, as clients do.

// newAccountEmpties are newAccount payloads whose every optional field is
// missing, null or empty; the last is what the step CLI sends.
var newAccountEmpties = []struct{ name, payload string }{
	{"NoFields", `{}`},
	{"ContactNull", `{"contact":null}`},
	{"ContactEmpty", `{"contact":[]}`},
	{"TermsOfServiceAgreedFalse", `{"termsOfServiceAgreed":false}`},
	{"OnlyReturnExistingFalse", `{"onlyReturnExisting":false}`},
	{"ExternalAccountBindingNull", `{"externalAccountBinding":null}`},
	{"ExternalAccountBindingEmpty", `{"externalAccountBinding":{}}`},
	{"AllEmpty", `{"contact":[],"termsOfServiceAgreed":false,"onlyReturnExisting":false,"externalAccountBinding":null}`},
	{"StepCLI", `{"contact":null,"onlyReturnExisting":false,"termsOfServiceAgreed":true}`},
}

func TestNewAccount_EmptyOptionalFieldsAreNotGiven(t *testing.T) {
	for _, tc := range newAccountEmpties {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			r := c.post(g.base+pathNewAccount, []byte(tc.payload))
			if r.status != http.StatusCreated {
				t.Fatalf("newAccount %s: %d %s", tc.payload, r.status, r.body)
			}
			var body map[string]any
			r.decode(t, &body)
			if _, ok := body["contact"]; ok || body["status"] != "valid" {
				t.Errorf("account %s, want valid without contact", r.body)
			}
			tp, err := thumbprint(&jose.JSONWebKey{Key: c.key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			acct, err := g.store.AccountByThumbprint(context.Background(), tp)
			if err != nil || acct.Contact != nil || acct.RegistrationID != "" {
				t.Fatalf("stored account %+v, %v; want one without contact or registration", acct, err)
			}
			// The same payload again finds the account.
			again := c.post(g.base+pathNewAccount, []byte(tc.payload))
			if again.status != http.StatusOK || again.header.Get("Location") != r.header.Get("Location") {
				t.Errorf("newAccount again: %d at %q, want 200 at %q", again.status, again.header.Get("Location"), r.header.Get("Location"))
			}
		})
	}
}

// An empty binding is no binding: where one is required, the answer says
// so rather than that the binding is malformed.
func TestNewAccount_EmptyBindingWherePreregisteredIsExternalAccountRequired(t *testing.T) {
	for _, tc := range newAccountEmpties {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.cfg.RegistrationMode = RegistrationPreregistered
			r := g.newClient().post(g.base+pathNewAccount, []byte(tc.payload))
			if typ := r.problemType(); r.status != http.StatusForbidden || typ != problemNS+"externalAccountRequired" {
				t.Fatalf("newAccount %s: %d %s, want 403 externalAccountRequired", tc.payload, r.status, r.body)
			}
		})
	}
}

func TestNewOrder_EmptyValidityIsTheIssuersDefault(t *testing.T) {
	empties := map[string]any{
		"Missing":       nil,
		"Null":          json.RawMessage(`null`),
		"EmptyString":   "",
		"ZeroTime":      "0001-01-01T00:00:00Z",
		"ZeroTimeMilli": "0001-01-01T00:00:00.000Z",
		"ZeroTimeUTC":   "0001-01-01T00:00:00+00:00",
	}
	for name, v := range empties {
		for _, field := range []string{"notBefore", "notAfter", "both"} {
			t.Run(name+"/"+field, func(t *testing.T) {
				payload := map[string]any{"identifiers": negDNSIDs("v.example.com")}
				for _, f := range []string{"notBefore", "notAfter"} {
					if v != nil && (field == f || field == "both") {
						payload[f] = v
					}
				}
				checkDefaultValidity(t, payload)
			})
		}
	}
	t.Run("StepCLI", func(t *testing.T) {
		checkDefaultValidity(t, []byte(`{"identifiers":[{"type":"dns","value":"v.example.com"}],`+
			`"notBefore":"0001-01-01T00:00:00Z","notAfter":"0001-01-01T00:00:00Z"}`))
	})
}

// checkDefaultValidity creates an order and checks that it asks for no
// validity: its answer shows none and the issuer is handed none.
func checkDefaultValidity(t *testing.T, payload any) {
	t.Helper()
	g := newGateway(t)
	c := g.newClient()
	c.register()
	r := c.post(g.base+pathNewOrder, payload)
	if r.status != http.StatusCreated {
		t.Fatalf("newOrder: %d %s", r.status, r.body)
	}
	var body map[string]any
	r.decode(t, &body)
	if body["notBefore"] != nil || body["notAfter"] != nil {
		t.Errorf("order shows notBefore %v, notAfter %v; want neither", body["notBefore"], body["notAfter"])
	}
	o, err := g.store.GetOrder(context.Background(), path.Base(r.header.Get("Location")))
	if err != nil {
		t.Fatal(err)
	}
	if !o.NotBefore.IsZero() || !o.NotAfter.IsZero() {
		t.Errorf("stored order asks for %v to %v, want the issuer's default", o.NotBefore, o.NotAfter)
	}
}

// The rule makes no required field optional, and leaves times that are not
// zero as they were.
func TestNewOrder_EmptyFieldsKeepTheRestAsItWas(t *testing.T) {
	now := time.Now().UTC()
	zero := "0001-01-01T00:00:00Z"
	ids := negDNSIDs("v.example.com")
	cases := []struct {
		name    string
		payload map[string]any
		status  int
	}{
		{"IdentifiersMissing", map[string]any{"notBefore": zero, "notAfter": zero}, http.StatusBadRequest},
		{"IdentifiersNull", map[string]any{"identifiers": nil, "notAfter": zero}, http.StatusBadRequest},
		{"IdentifiersEmpty", map[string]any{"identifiers": []identifier{}, "notAfter": zero}, http.StatusBadRequest},
		{"NotAfterOneSecondAfterZero", map[string]any{"identifiers": ids, "notAfter": "0001-01-01T00:00:01Z"}, http.StatusBadRequest},
		{"NotAfterNotATime", map[string]any{"identifiers": ids, "notAfter": "0"}, http.StatusBadRequest},
		{"NotAfterGiven", map[string]any{"identifiers": ids, "notBefore": zero, "notAfter": now.Add(2 * time.Hour).Format(time.RFC3339)}, http.StatusCreated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			r := c.post(g.base+pathNewOrder, tc.payload)
			if r.status != tc.status {
				t.Fatalf("newOrder %v: %d %s, want %d", tc.payload, r.status, r.body, tc.status)
			}
			if tc.status != http.StatusCreated {
				if typ := r.problemType(); typ != problemNS+"malformed" {
					t.Errorf("problem %s, want malformed", typ)
				}
				return
			}
			var o orderBody
			r.decode(t, &o)
			if o.NotBefore != "" || o.NotAfter != tc.payload["notAfter"] {
				t.Errorf("order validity %q to %q, want the issuer's start to %q", o.NotBefore, o.NotAfter, tc.payload["notAfter"])
			}
		})
	}
}

func TestAccountUpdate_NullLeavesContactsEmptyRemovesThem(t *testing.T) {
	cases := []struct {
		name, payload string
		want          []string
	}{
		{"ContactMissing", `{}`, []string{"mailto:admin@example.com"}},
		{"ContactNull", `{"contact":null}`, []string{"mailto:admin@example.com"}},
		{"StatusEmpty", `{"status":""}`, []string{"mailto:admin@example.com"}},
		{"ContactEmptyRemovesThem", `{"contact":[]}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			r := c.post(c.kid, []byte(tc.payload))
			if r.status != http.StatusOK {
				t.Fatalf("update %s: %d %s", tc.payload, r.status, r.body)
			}
			var a accountBody
			r.decode(t, &a)
			if a.Status != "valid" || !slices.Equal(a.Contact, tc.want) {
				t.Errorf("account %s, contacts %v; want valid with %v", a.Status, a.Contact, tc.want)
			}
		})
	}
}

func TestRevoke_ReasonNotGivenIsUnspecified(t *testing.T) {
	for name, reason := range map[string]any{"Missing": nil, "Null": json.RawMessage(`null`), "Zero": 0} {
		t.Run(name, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			_, leaf, _ := c.issue("rv.example.com")
			payload := map[string]any{"certificate": b64(leaf)}
			if reason != nil {
				payload["reason"] = reason
			}
			if r := c.post(g.base+pathRevoke, payload); r.status != http.StatusOK {
				t.Fatalf("revoke %v: %d %s", payload, r.status, r.body)
			}
			revoked := g.issuer.Revocations()
			if len(revoked) != 1 {
				t.Fatalf("issuer revoked %v, want one certificate", revoked)
			}
			for _, got := range revoked {
				if got != 0 {
					t.Errorf("reason %d, want 0 (unspecified)", got)
				}
			}
		})
	}
}

// The JWS's own optional members, empty: no unprotected header, no
// signatures list, no jwk beside the kid, no crit.
func TestJWS_EmptyOptionalMembersAreNotGiven(t *testing.T) {
	outer := map[string]string{
		"HeaderNull":      `"header":null`,
		"HeaderEmpty":     `"header":{}`,
		"SignaturesNull":  `"signatures":null`,
		"SignaturesEmpty": `"signatures":[]`,
	}
	protected := map[string]struct {
		key   string
		value any
	}{
		"JWKNull":   {"jwk", json.RawMessage(`null`)},
		"JWKEmpty":  {"jwk", json.RawMessage(`{}`)},
		"CritEmpty": {"crit", []string{}},
	}
	run := func(name string, edit func(h map[string]any), extra string) {
		t.Run(name, func(t *testing.T) {
			g := newGateway(t)
			c := g.newClient()
			c.register()
			url := g.base + pathNewOrder
			h := c.negHeader(url)
			if edit != nil {
				edit(h)
			}
			body := negFlatJWS(t, c.key, h, marshalPayload(t, orderPayload))
			if extra != "" {
				body = append(append(body[:len(body)-1], ','), extra+"}"...)
			}
			if r := g.send(url, "application/jose+json", body); r.status != http.StatusCreated {
				t.Fatalf("newOrder: %d %s", r.status, r.body)
			}
		})
	}
	for name, member := range outer {
		run(name, nil, member)
	}
	for name, m := range protected {
		run(name, func(h map[string]any) { h[m.key] = m.value }, "")
	}
}

func TestAbsentJSON(t *testing.T) {
	for raw, want := range map[string]bool{
		"": true, "null": true, ` null `: true, `""`: true, "0": true, "false": true,
		"[]": true, "[ ]": true, "{}": true, "{\n}": true,
		`"x"`: false, "1": false, "true": false, "[0]": false, `{"a":1}`: false, `" "`: false,
	} {
		if got := absentJSON(json.RawMessage(raw)); got != want {
			t.Errorf("absentJSON(%q) = %v, want %v", raw, got, want)
		}
	}
}
