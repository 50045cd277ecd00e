package caddyacmegw

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestCaddyfile_AdaptProfiles(t *testing.T) {
	out, err := adaptGatewayBlock(t, `
		profile short {
			description    "One hour, client only"
			lifetime       1h
			key_usages     digital_signature
			ext_key_usages client_auth
		}
		profile tls {
			description "TLS servers"
			procedure   "ACME TLS Server"
		}
		default_profile tls`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	jsonEqual(t, oneGatewayHandler(t, out), `{
		"handler": "acme_gateway",
		"profiles": [
			{"name": "short", "description": "One hour, client only", "lifetime": 3600000000000,
			 "key_usages": ["digital_signature"], "ext_key_usages": ["client_auth"]},
			{"name": "tls", "description": "TLS servers", "procedure": "ACME TLS Server"}
		],
		"default_profile": "tls"
	}`)
}

func TestCaddyfile_AdaptProfileRefusals(t *testing.T) {
	testAdaptErrors(t, []adaptErrorCase{
		{"no name", "profile {\n description x\n}", "wrong argument count"},
		{"two names", "profile a b", "wrong argument count"},
		{"unknown option", "profile a {\n validity 1h\n}", `unrecognized profile option "validity"`},
		{"bad lifetime", "profile a {\n lifetime soon\n}", "lifetime"},
		{"key_usages without a usage", "profile a {\n key_usages\n}", "wrong argument count"},
		{"default_profile without a name", "default_profile", "wrong argument count"},
	})
}

func TestProfileConfig_Usages(t *testing.T) {
	p, err := ProfileConfig{Name: "a", KeyUsages: []string{"digital_signature", "key_encipherment"},
		ExtKeyUsages: []string{"server_auth", "server_auth"}}.gatewayProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(p.ExtKeyUsage) != 1 {
		t.Fatalf("usages %v %v", p.KeyUsage, p.ExtKeyUsage)
	}
	for _, pc := range []ProfileConfig{
		{Name: "a", KeyUsages: []string{"cert_sign"}},
		{Name: "a", ExtKeyUsages: []string{"code_signing"}},
		{Name: "a", Lifetime: caddy.Duration(-time.Hour)},
		{Description: "no name"},
	} {
		if _, err := pc.gatewayProfile(); err == nil {
			t.Errorf("%+v accepted", pc)
		}
	}
}

// With an issuer that takes no profile settings, only descriptions; the
// default must be one of the profiles; the directory offers them.
func TestProvision_Profiles(t *testing.T) {
	tests := []struct {
		name, profiles, wantErr string
	}{
		{"names and descriptions", `"profiles":[{"name":"a","description":"A"},{"name":"b"}],"default_profile":"b"`, ""},
		{"a lifetime this issuer cannot honour", `"profiles":[{"name":"a","lifetime":"1h"}]`, "takes no profile settings"},
		{"a default not among them", `"profiles":[{"name":"a"}],"default_profile":"c"`, `default profile "c"`},
		{"a default without profiles", `"default_profile":"c"`, `default profile "c"`},
		{"a name twice", `"profiles":[{"name":"a"},{"name":"a"}]`, `profile "a" given twice`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			var h Handler
			config := `{"name":"provision-profiles-` + string(rune('a'+i)) + `",` + tt.profiles +
				`,"storage":{"module":"memory"},"issuer":{"module":"provision_test"}}`
			if err := json.Unmarshal([]byte(config), &h); err != nil {
				t.Fatal(err)
			}
			err := h.Provision(ctx)
			defer h.Cleanup()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				if got := h.gw.Config().DefaultProfile; got != "b" {
					t.Fatalf("default profile %q, want b", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision = %v, want an error saying %s", err, tt.wantErr)
			}
		})
	}
}
