package loadgen

import (
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

func TestParseEAB(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []acme.EAB
		wantErr string
	}{
		{"one per line, comments and blanks skipped", "# officer export\nkid-1 AQID\n\n  kid-2   BAUG  \n",
			[]acme.EAB{{KeyID: "kid-1", MACKey: "AQID"}, {KeyID: "kid-2", MACKey: "BAUG"}}, ""},
		{"padding is dropped", "kid AQI=\n", []acme.EAB{{KeyID: "kid", MACKey: "AQI"}}, ""},
		{"empty file", "", nil, ""},
		{"missing key", "kid-1 AQID\nkid-2\n", nil, "line 2"},
		{"not base64url", "kid-1 a+b/\n", nil, "not base64url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEAB(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("binding %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestNewEAB_ErrorDoesNotShowTheKey(t *testing.T) {
	const secret = "not*a*key"
	_, err := NewEAB("kid", secret)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v: want one that does not show the key", err)
	}
}

func TestNewHTTPClient_RejectsRootFileWithoutPEM(t *testing.T) {
	if _, err := NewHTTPClient([]byte("not PEM"), false, 1); err == nil {
		t.Fatal("accepted a root file without a certificate")
	}
}
