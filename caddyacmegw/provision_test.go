package caddyacmegw

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

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
	for _, a := range []string{"169.254.169.254", "127.0.0.1", "127.1.2.3", "::1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::",
		"fd00:ec2::254", "100.100.100.200"} { // AWS IPv6 and Alibaba Cloud metadata
		if !contains(a) {
			t.Errorf("default deny_validation_to lets validation connect to %s", a)
		}
	}
	// Enterprise names live in private ranges.
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "172.16.0.1", "fd00::1", "fd00:ec2::253", "100.100.100.201", "192.0.2.7"} {
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

func (provisionIssuer) Issue(context.Context, *gateway.IssueRequest) ([]*x509.Certificate, error) {
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
				if want := len(tt.allowIP); len(h.gw.Config().AllowIP) != want {
					t.Fatalf("allow_ip parsed to %v, want %d networks", h.gw.Config().AllowIP, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// Lists whose absence means a default are refused empty, where JSON's []
// would otherwise silently take the default.
func TestProvision_EmptyListsAreRefused(t *testing.T) {
	for _, field := range []string{"challenges", "resolvers", "deny_validation_to"} {
		t.Run(field, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			var h Handler
			if err := json.Unmarshal([]byte(`{"name":"empty-`+field+`","`+field+`":[],"storage":{"module":"memory"},"issuer":{"module":"provision_test"}}`), &h); err != nil {
				t.Fatal(err)
			}
			err := h.Provision(ctx)
			defer h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), field+" is empty") {
				t.Fatalf("Provision = %v, want %s refused", err, field)
			}
		})
	}
}
