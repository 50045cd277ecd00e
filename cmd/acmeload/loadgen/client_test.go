package loadgen

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	if _, err := NewHTTPClient([]byte("not PEM"), false, 1, false); err == nil {
		t.Fatal("accepted a root file without a certificate")
	}
}

func TestNewHTTPClient_SpeaksHTTP2UnlessHTTP1(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for http1, want := range map[bool]string{false: "HTTP/2.0", true: "HTTP/1.1"} {
		client, err := NewHTTPClient(rootPEM, false, 1, http1)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("http1=%v: the server saw %s, want %s", http1, body, want)
		}
	}
}
