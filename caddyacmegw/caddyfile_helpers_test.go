package caddyacmegw

import (
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// adaptGatewayBlock adapts a Caddyfile of one site whose one acme_gateway
// directive has block as its body.
func adaptGatewayBlock(t *testing.T, block string) ([]byte, error) {
	t.Helper()
	return adaptCaddyfile(t, "acme.example.com {\n\tacme_gateway {\n\t\t"+block+"\n\t}\n}\n")
}

// oneGatewayHandler returns the acme_gateway handler of an adapted config
// that must have exactly one.
func oneGatewayHandler(t *testing.T, config []byte) map[string]any {
	t.Helper()
	hs := gatewayHandlers(t, config)
	if len(hs) != 1 {
		t.Fatalf("%d acme_gateway handlers in %s", len(hs), config)
	}
	return hs[0]
}

// adaptErrorCase is an acme_gateway body that must not adapt, and what the
// error must mention.
type adaptErrorCase struct {
	name      string
	block     string
	wantInErr string
}

func testAdaptErrors(t *testing.T, tests []adaptErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adaptGatewayBlock(t, tt.block)
			if err == nil {
				t.Fatalf("adapted %q without error", tt.block)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}

// unmarshalCase is Caddyfile input for a T's UnmarshalCaddyfile, and the T
// it must make or that it must fail.
type unmarshalCase[T any] struct {
	name    string
	input   string
	want    T
	wantErr bool
}

func testUnmarshal[T any, P interface {
	*T
	caddyfile.Unmarshaler
}](t *testing.T, tests []unmarshalCase[T]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got T
			err := P(&got).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnmarshalCaddyfile error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
