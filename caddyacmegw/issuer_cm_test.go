package caddyacmegw

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCMIssuer_UnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`cm {
		procedure "ACME TLS Server" https://cm.example.com:8443/pgwy/api
		procedure "ACME TLS Client" https://cm.example.com:8444/pgwy/client/api
		default_procedure "ACME TLS Client"
		client_certificate /etc/acmegw/officer.crt /etc/acmegw/officer.key
		signing caller
		signer /etc/acmegw/signer.crt /etc/acmegw/signer.key
		chain /etc/acmegw/cm-chain.pem
		trusted_roots /etc/acmegw/cm-roots.pem
		timeout 10s
		pending_deadline 2h
	}`)
	var got CMIssuer
	if err := got.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := CMIssuer{
		Procedures: []CMProcedure{
			{Name: "ACME TLS Server", URL: "https://cm.example.com:8443/pgwy/api"},
			{Name: "ACME TLS Client", URL: "https://cm.example.com:8444/pgwy/client/api"},
		},
		DefaultProcedure:  "ACME TLS Client",
		ClientCertificate: "/etc/acmegw/officer.crt", ClientKey: "/etc/acmegw/officer.key",
		Signing:           "caller",
		SignerCertificate: "/etc/acmegw/signer.crt", SignerKey: "/etc/acmegw/signer.key",
		Chain:           "/etc/acmegw/cm-chain.pem",
		TrustedRoots:    "/etc/acmegw/cm-roots.pem",
		Timeout:         caddy.Duration(10 * time.Second),
		PendingDeadline: caddy.Duration(2 * time.Hour),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// The options of the contract CM does not have are refused with what to
// do instead.
func TestCMIssuer_UnmarshalCaddyfileRefusals(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"URLWithoutProcedure", "url https://cm.example.com/pgwy/api", "procedure <name> <url>"},
		{"ProcedureWithoutURL", `procedure "ACME TLS Server"`, "procedure <name> <url>"},
		{"MaxValidity", "max_validity 90d", "token procedure sets the validity"},
		{"UnknownSigning", "signing officer", `"caller" or "server"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ci CMIssuer
			err := ci.UnmarshalCaddyfile(caddyfile.NewTestDispenser("cm {\n" + tt.line + "\n}"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
