package testsrv

import (
	"io"
	"net/http"
	"testing"
)

func TestHTTP01_ServesKeyAuthorizationOfTokenOnly(t *testing.T) {
	s, err := StartHTTP01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.Set("tok", "tok.thumb")
	base := "http://" + s.Addr()

	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
	}{
		{"token set", http.MethodGet, "/.well-known/acme-challenge/tok", http.StatusOK, "tok.thumb"},
		{"other token", http.MethodGet, "/.well-known/acme-challenge/other", http.StatusNotFound, ""},
		{"other path", http.MethodGet, "/tok", http.StatusNotFound, ""},
		{"not GET", http.MethodPost, "/.well-known/acme-challenge/tok", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
		})
	}

	s.Delete("tok")
	resp, err := http.Get(base + "/.well-known/acme-challenge/tok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after Delete: status %d, want 404", resp.StatusCode)
	}
}
