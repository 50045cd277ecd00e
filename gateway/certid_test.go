package gateway

import (
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

func TestParseCertID(t *testing.T) {
	aki := []byte{0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3}
	enc := base64.RawURLEncoding.EncodeToString
	// RFC 9773 §4.1's example: serial 0x87654321 is DER 00 87 65 43 21.
	rfcExample := "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
	good := []struct {
		name, id   string
		aki        []byte
		wantSerial string
	}{
		{"rfc example", rfcExample, nil, "87654321"},
		{"short serial", enc(aki) + "." + enc([]byte{0x01}), aki, "1"},
		{"serial needing no zero", enc(aki) + "." + enc([]byte{0x7f, 0x00}), aki, "7f00"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCertID(tc.id)
			if err != nil {
				t.Fatalf("parseCertID(%q): %v", tc.id, err)
			}
			if got.serial != tc.wantSerial {
				t.Errorf("serial = %s, want %s", got.serial, tc.wantSerial)
			}
			if tc.aki != nil && string(got.aki) != string(tc.aki) {
				t.Errorf("aki = %x, want %x", got.aki, tc.aki)
			}
		})
	}
	bad := []struct{ name, id string }{
		{"no dot", enc(aki) + enc([]byte{1})},
		{"empty aki", "." + enc([]byte{1})},
		{"empty serial", enc(aki) + "."},
		{"padded aki", base64.URLEncoding.EncodeToString(aki) + "." + enc([]byte{1})},
		{"padded serial", enc(aki) + "." + base64.URLEncoding.EncodeToString([]byte{1, 2})},
		{"standard base64", "+/+/." + enc([]byte{1})},
		{"stray bits", "00." + enc([]byte{1})},
		{"line break", enc(aki) + ".\r"},
		{"negative serial", enc(aki) + "." + enc([]byte{0x87, 0x65})},
		{"redundant leading zero", enc(aki) + "." + enc([]byte{0x00, 0x01})},
		{"three parts", enc(aki) + "." + enc([]byte{1}) + "." + enc([]byte{1})},
		{"too long", enc(aki) + "." + strings.Repeat("A", maxCertIDLen)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCertID(tc.id)
			if p := asProblem(err); err == nil || p.kind() != ProblemMalformed || p.Status != 400 {
				t.Fatalf("parseCertID(%q) = %v, want a 400 malformed problem", tc.id, err)
			}
		})
	}
}

func TestCertIDOf_RoundTrips(t *testing.T) {
	aki := []byte{1, 2, 3, 4}
	for _, serial := range []int64{1, 0x7f, 0x80, 0xff00, 0x87654321} {
		leaf := &x509.Certificate{SerialNumber: big.NewInt(serial), AuthorityKeyId: aki}
		id, err := parseCertID(certIDOf(leaf))
		if err != nil {
			t.Fatalf("serial %x: parseCertID(certIDOf) = %v", serial, err)
		}
		if id.serial != big.NewInt(serial).Text(16) || string(id.aki) != string(aki) {
			t.Errorf("serial %x: round trip gave %+v", serial, id)
		}
	}
}

// FuzzParseCertID: no input panics, and what parses names the serial that
// certIDOf writes back.
func FuzzParseCertID(f *testing.F) {
	for _, s := range []string{"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "AQ.AQ", ".", "A.A", "AA.gA", "AA.AAE", "AA==.AQ", "00.A0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseCertID(s)
		if err != nil {
			return
		}
		serial, ok := new(big.Int).SetString(id.serial, 16)
		if !ok {
			t.Fatalf("parseCertID(%q) serial %q is not hex", s, id.serial)
		}
		back := certIDOf(&x509.Certificate{SerialNumber: serial, AuthorityKeyId: id.aki})
		if back != s {
			t.Fatalf("parseCertID(%q) then certIDOf = %q", s, back)
		}
	})
}
