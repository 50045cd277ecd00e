package caddyacmegw

import (
	"testing"

	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func TestCaddyfile_AdaptValidationSubdirectives(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
	}{
		{"all of them", `
		challenges                  http-01 dns-01 tls-alpn-01
		allow_ip                    192.0.2.0/24 2001:db8::/32
		max_validations_per_account 4
		validation_attempts         3
		tls_alpn_port               8443
		deny_validation_to          127.0.0.0/8 169.254.0.0/16
		caa_identities              ca.example.net ca.example.org
		dnssec_required`, `{
			"handler": "acme_gateway",
			"challenges": ["http-01", "dns-01", "tls-alpn-01"],
			"allow_ip": ["192.0.2.0/24", "2001:db8::/32"],
			"max_validations_per_account": 4,
			"validation_attempts": 3,
			"tls_alpn_port": 8443,
			"deny_validation_to": ["127.0.0.0/8", "169.254.0.0/16"],
			"caa_identities": ["ca.example.net", "ca.example.org"],
			"dnssec_required": true
		}`},
		{"deny_validation_to none", "deny_validation_to none",
			`{"handler": "acme_gateway", "deny_validation_to": ["none"]}`},
		{"repeated list subdirectives append", `
		allow_ip           192.0.2.0/24
		allow_ip           2001:db8::/32
		caa_identities     ca.example.net
		caa_identities     ca.example.org
		deny_validation_to 127.0.0.0/8
		deny_validation_to ::1/128`, `{
			"handler": "acme_gateway",
			"allow_ip": ["192.0.2.0/24", "2001:db8::/32"],
			"caa_identities": ["ca.example.net", "ca.example.org"],
			"deny_validation_to": ["127.0.0.0/8", "::1/128"]
		}`},
		{"tls-alpn-01 alone", "challenges tls-alpn-01",
			`{"handler": "acme_gateway", "challenges": ["tls-alpn-01"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adaptGatewayBlock(t, tt.block)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			jsonEqual(t, oneGatewayHandler(t, out), tt.want)
		})
	}
}

func TestCaddyfile_AdaptValidationSubdirectiveErrors(t *testing.T) {
	testAdaptErrors(t, []adaptErrorCase{
		{"max_validations_per_account not a number", "max_validations_per_account many", `"many"`},
		{"max_validations_per_account without value", "max_validations_per_account", "argument"},
		{"validation_attempts not a number", "validation_attempts twice", `"twice"`},
		{"validation_attempts with two values", "validation_attempts 1 2", "argument"},
		{"tls_alpn_port not a number", "tls_alpn_port https", `"https"`},
		{"allow_ip without networks", "allow_ip", "argument"},
		{"deny_validation_to without networks", "deny_validation_to", "argument"},
		{"caa_identities without names", "caa_identities", "argument"},
		{"dnssec_required with a value", "dnssec_required yes", "argument"},
	})
}

func TestHandler_DefaultsForValidationSettings(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	if h.MaxValidationsPerAccount != 16 || h.ValidationAttempts != 1 || h.TLSALPNPort != 443 {
		t.Fatalf("defaults: max_validations_per_account %d, validation_attempts %d, tls_alpn_port %d; want 16, 1, 443",
			h.MaxValidationsPerAccount, h.ValidationAttempts, h.TLSALPNPort)
	}
	if len(h.DenyValidationTo) == 0 {
		t.Fatal("deny_validation_to has no default")
	}
}

func TestValidate_RefusesChallengeTypeListedTwice(t *testing.T) {
	for _, challenges := range [][]string{
		{gateway.ChallengeHTTP01, gateway.ChallengeHTTP01},
		{gateway.ChallengeDNS01, gateway.ChallengeHTTP01, gateway.ChallengeDNS01},
	} {
		h := &Handler{Challenges: challenges}
		h.setDefaults()
		if err := h.validate(); err == nil {
			t.Errorf("challenges %v accepted", challenges)
		}
	}
	h := &Handler{Challenges: []string{gateway.ChallengeDNS01, gateway.ChallengeHTTP01}}
	h.setDefaults()
	if err := h.validate(); err != nil {
		t.Errorf("distinct challenges refused: %v", err)
	}
}
