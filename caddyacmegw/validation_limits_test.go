package caddyacmegw

// Validation attempts, the per-account cap, and the network lists.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestValidationAttempts(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		failFirst int
		want      string
		wantCalls int
	}{
		{"second try succeeds with two attempts", 2, 1, storage.StatusValid, 2},
		{"first failure is final with one attempt", 1, 1, storage.StatusInvalid, 1},
		{"success on the first try stops trying", 2, 0, storage.StatusValid, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			v := &recordingValidator{failFirst: tt.failFirst}
			g.h.validator = v
			g.h.ValidationAttempts = tt.attempts
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor("retry.example.com")
			c.post(challengeOfType(t, c.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
			c.waitAuthz(o.Authorizations[0], tt.want)
			if got := v.count(challengeHTTP01); got != tt.wantCalls {
				t.Fatalf("%d validation tries, want %d", got, tt.wantCalls)
			}
		})
	}
}

// perAccountScene has account a hold one blocked validation, with the cap
// at one validation per account, and a second pending authorization.
func perAccountScene(s *negScene) {
	s.g.h.MaxValidationsPerAccount = 1
	gate := newGateValidator(s.t)
	s.g.h.validator = gate
	s.a = s.registered()
	s.pendingOrder(s.a, "one.example.com", "two.example.com")
	first := s.a.readAuthz(s.order.Authorizations[0])
	s.a.post(challengeOfType(s.t, first, challengeHTTP01).URL, map[string]any{})
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		s.t.Fatal("first validation did not start")
	}
}

func TestNegative_MaxValidationsPerAccount(t *testing.T) {
	runNegative(t, []negCase{{
		name:  "second validation of the same account",
		setup: perAccountScene,
		send: func(s *negScene) *reply {
			second := s.a.readAuthz(s.order.Authorizations[1])
			return s.a.post(challengeOfType(s.t, second, challengeHTTP01).URL, map[string]any{})
		},
		typ: "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, _ *negScene, r *reply, _ *Problem) {
			if r.header.Get("Retry-After") == "" {
				t.Error("rateLimited answer without Retry-After")
			}
		},
	}})
}

func TestMaxValidationsPerAccount_OtherAccountIsNotAffected(t *testing.T) {
	g := newGateway(t)
	s := &negScene{t: t, g: g}
	perAccountScene(s)
	gate := g.h.validator.(*gateValidator)

	b := g.newClient()
	b.register()
	_, o := b.newOrderFor("other.example.com")
	var ch challengeBody
	r := b.post(challengeOfType(t, b.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
	r.decode(t, &ch)
	if r.status != http.StatusOK || ch.Status != storage.StatusProcessing {
		t.Fatalf("another account's challenge: %d %s, want 200 processing", r.status, r.body)
	}
	select {
	case <-gate.started:
	case <-time.After(5 * time.Second):
		t.Fatal("another account's validation did not start")
	}

	// Once a's validation ends, a may validate again.
	gate.open()
	s.a.waitAuthz(s.order.Authorizations[0], storage.StatusValid)
	second := s.a.readAuthz(s.order.Authorizations[1])
	if r := s.a.post(challengeOfType(t, second, challengeHTTP01).URL, map[string]any{}); r.status != http.StatusOK {
		t.Fatalf("a's second challenge after the first ended: %d %s", r.status, r.body)
	}
	s.a.waitAuthz(s.order.Authorizations[1], storage.StatusValid)
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"none is empty", []string{"none"}, []string{}, false},
		{"empty", nil, []string{}, false},
		{"networks", []string{"10.0.0.0/8", "2001:db8::/32"}, []string{"10.0.0.0/8", "2001:db8::/32"}, false},
		{"host bits are masked", []string{"192.0.2.7/24"}, []string{"192.0.2.0/24"}, false},
		{"bare address", []string{"192.0.2.7"}, nil, true},
		{"prefix too long", []string{"10.0.0.0/33"}, nil, true},
		{"not a network", []string{"intranet"}, nil, true},
		{"none among networks", []string{"none", "10.0.0.0/8"}, nil, true},
		{"None in upper case", []string{"None"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePrefixes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsePrefixes(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePrefixes(%q): %v", tt.in, err)
			}
			gotS := make([]string, len(got))
			for i, p := range got {
				gotS[i] = p.String()
			}
			if !slices.Equal(gotS, tt.want) {
				t.Fatalf("parsePrefixes(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}

func TestDenyValidationTo_DefaultsCoverLoopbackLinkLocalAndMetadata(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	deny, err := parsePrefixes(h.DenyValidationTo)
	if err != nil {
		t.Fatalf("default deny_validation_to: %v", err)
	}
	contains := func(addr string) bool {
		a := netip.MustParseAddr(addr)
		for _, p := range deny {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, a := range []string{"169.254.169.254", "127.0.0.1", "127.1.2.3", "::1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::"} {
		if !contains(a) {
			t.Errorf("default deny_validation_to lets validation connect to %s", a)
		}
	}
	// Enterprise names live in private ranges.
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "172.16.0.1", "fd00::1", "192.0.2.7"} {
		if contains(a) {
			t.Errorf("default deny_validation_to refuses %s", a)
		}
	}
	none := &Handler{DenyValidationTo: []string{"none"}}
	none.setDefaults()
	if p, err := parsePrefixes(none.DenyValidationTo); err != nil || len(p) != 0 {
		t.Fatalf("deny_validation_to none: %v %v, want empty", p, err)
	}
}

// provisionIssuer is an issuer module for Provision tests, which would
// otherwise need the pki app. It issues nothing.
type provisionIssuer struct{}

func (provisionIssuer) Issue(context.Context, *IssueRequest) ([]*x509.Certificate, error) {
	return nil, errors.New("provisionIssuer issues nothing")
}

func (provisionIssuer) Revoke(context.Context, *x509.Certificate, int) error { return nil }

func (provisionIssuer) MaxLifetime() time.Duration { return time.Hour }

func (provisionIssuer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.issuers.provision_test",
		New: func() caddy.Module { return new(provisionIssuer) },
	}
}

func init() { caddy.RegisterModule(provisionIssuer{}) }

func TestProvision_NetworkLists(t *testing.T) {
	tests := []struct {
		name    string
		deny    []string
		allowIP []string
		wantErr string
	}{
		{"bad deny_validation_to", []string{"10.0.0.0/33"}, nil, "deny_validation_to"},
		{"address in deny_validation_to", []string{"10.0.0.1"}, nil, "deny_validation_to"},
		{"none with a network in deny_validation_to", []string{"none", "10.0.0.0/8"}, nil, "deny_validation_to"},
		{"bad allow_ip", nil, []string{"192.0.2.0/24", "intranet"}, "allow_ip"},
		{"none", []string{"none"}, []string{"192.0.2.0/24"}, ""},
		{"networks", []string{"10.0.0.0/8"}, []string{"2001:db8::/32"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			h := &Handler{
				Name:             "provision-networks-" + string(rune('a'+i)),
				Resolvers:        []string{"192.0.2.53:53"},
				DenyValidationTo: tt.deny,
				AllowIP:          tt.allowIP,
				StorageRaw:       json.RawMessage(`{"module":"memory"}`),
				IssuerRaw:        json.RawMessage(`{"module":"provision_test"}`),
			}
			err := h.Provision(ctx)
			defer func() {
				if cerr := h.Cleanup(); cerr != nil {
					t.Errorf("Cleanup: %v", cerr)
				}
			}()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				if want := len(tt.allowIP); len(h.allowIP) != want {
					t.Fatalf("allow_ip parsed to %v, want %d networks", h.allowIP, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestDirectory_MetaShowsCAAIdentitiesWhenSet(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
	}{
		{"set", []string{"ca.example.net", "ca.example.org"}},
		{"unset", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.CAAIdentities = tt.ids
			resp, err := g.srv.Client().Get(g.base + pathDirectory)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var dir struct {
				Meta map[string]json.RawMessage `json:"meta"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
				t.Fatal(err)
			}
			raw, ok := dir.Meta["caaIdentities"]
			if tt.ids == nil {
				if ok {
					t.Fatalf("meta has caaIdentities %s without caa_identities", raw)
				}
				return
			}
			var got []string
			if err := json.Unmarshal(raw, &got); err != nil || !slices.Equal(got, tt.ids) {
				t.Fatalf("meta caaIdentities %s (%v), want %v", raw, err, tt.ids)
			}
		})
	}
}
