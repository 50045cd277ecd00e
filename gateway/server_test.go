package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

// rootServer is a Server built as newGateway builds one, at the root.
func rootServer(t *testing.T) *Server {
	t.Helper()
	nonces, err := NewNonceStore(time.Hour, 1000, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{
		PathPrefix:  "/",
		Store:       memory.New(),
		Nonces:      nonces,
		Issuer:      newTestIssuer(t),
		Validator:   &testValidator{},
		Validations: NewValidationPool(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); _ = h.validating.Stop() })
	return h
}

func TestHandle_PathPrefixRootServesACMEAndPassesOtherPaths(t *testing.T) {
	h := rootServer(t)
	if h.cfg.PathPrefix != "" {
		t.Fatalf("path_prefix / became %q, want \"\"", h.cfg.PathPrefix)
	}
	tests := []struct {
		method, path string
		acme         bool
	}{
		{http.MethodGet, "/directory", true},
		{http.MethodHead, "/new-nonce", true},
		{http.MethodPost, "/new-order", true},
		{http.MethodPost, "/authz/abc", true},
		{http.MethodGet, "/", false},
		{http.MethodGet, "/index.html", false},
		{http.MethodGet, "/directory/other", false},
		{http.MethodGet, "/acme/directory", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, "http://acme.test"+tt.path, nil)
			nextCalled := !h.Handle(w, r)
			if nextCalled == tt.acme {
				t.Fatalf("next handler called: %v, want %v (answer %d %s)", nextCalled, !tt.acme, w.Code, w.Body)
			}
			if tt.acme && w.Header().Get("Replay-Nonce") == "" {
				t.Fatalf("ACME answer without Replay-Nonce: %d %s", w.Code, w.Body)
			}
		})
	}

	// The directory's URLs are at the root too, without a double slash.
	w := httptest.NewRecorder()
	if !h.Handle(w, httptest.NewRequest(http.MethodGet, "http://acme.test/directory", nil)) {
		t.Fatal("directory passed on")
	}
	var dir directoryBody
	if err := json.Unmarshal(w.Body.Bytes(), &dir); err != nil || w.Code != http.StatusOK {
		t.Fatalf("directory: %d %s", w.Code, w.Body)
	}
	if dir.NewNonce != "http://acme.test/new-nonce" || dir.NewOrder != "http://acme.test/new-order" {
		t.Fatalf("directory at the root names %q and %q", dir.NewNonce, dir.NewOrder)
	}
}

// Every URL the gateway builds routes back to the resource it names.
func TestRouteTable_URLsRouteBackToTheirPattern(t *testing.T) {
	g := newGateway(t)
	base := httptest.NewRequest(http.MethodGet, g.base+PathDirectory, nil)
	for _, rt := range routeTable {
		var values []string
		for i := 0; i < strings.Count(rt.pattern, "{"); i++ {
			values = append(values, fmt.Sprintf("v%d", i))
		}
		url := g.h.resourceURL(base, rt.pattern, values...)
		if strings.ContainsAny(url, "{}") {
			t.Fatalf("%s built as %s", rt.pattern, url)
		}
		_, pattern := g.h.mux.Handler(httptest.NewRequest(http.MethodPost, url, nil))
		if pattern != g.h.cfg.PathPrefix+rt.pattern {
			t.Errorf("%s routes to %q, want %q", url, pattern, rt.pattern)
		}
	}
}
