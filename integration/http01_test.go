package integration

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// http01Responder answers http-01 validation on 127.0.0.1:<Port>: it serves
// /.well-known/acme-challenge/<token> with the key authorization a client
// set for that token, whatever the Host, and 404 for anything else.
type http01Responder struct {
	// Port is the listening port, for the gateway's http_port.
	Port int

	mu       sync.Mutex
	keyAuths map[string]string // token -> key authorization
}

// startHTTP01 starts a responder that is shut down when the test ends.
func startHTTP01(t testing.TB) *http01Responder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &http01Responder{Port: ln.Addr().(*net.TCPAddr).Port, keyAuths: map[string]string{}}
	srv := &http.Server{Handler: r}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// Set serves keyAuth for token.
func (r *http01Responder) Set(token, keyAuth string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keyAuths[token] = keyAuth
}

// Delete stops serving token.
func (r *http01Responder) Delete(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keyAuths, token)
}

func (r *http01Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, "/.well-known/acme-challenge/")
	r.mu.Lock()
	keyAuth, found := r.keyAuths[token]
	r.mu.Unlock()
	if !ok || !found || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write([]byte(keyAuth))
}
