package testsrv

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTP01 answers http-01 validation: it serves
// /.well-known/acme-challenge/<token> with the key authorization set for
// that token, whatever the Host, and 404 for anything else. It is safe for
// concurrent use.
type HTTP01 struct {
	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	keyAuths map[string]string // token -> key authorization
}

// StartHTTP01 serves on addr ("127.0.0.1:0" picks a port).
func StartHTTP01(addr string) (*HTTP01, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http-01 responder: %w", err)
	}
	s := &HTTP01{ln: ln, keyAuths: map[string]string{}}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the listening "host:port".
func (s *HTTP01) Addr() string { return s.ln.Addr().String() }

// Port is the listening port; the ACME server's http_port must be it.
func (s *HTTP01) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server.
func (s *HTTP01) Close() error { return s.srv.Close() }

// Set serves keyAuth for token.
func (s *HTTP01) Set(token, keyAuth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyAuths[token] = keyAuth
}

// Delete stops serving token.
func (s *HTTP01) Delete(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keyAuths, token)
}

// Tokens returns how many tokens are served.
func (s *HTTP01) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keyAuths)
}

// ServeHTTP implements http.Handler.
func (s *HTTP01) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, "/.well-known/acme-challenge/")
	s.mu.Lock()
	keyAuth, found := s.keyAuths[token]
	s.mu.Unlock()
	if !ok || !found || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write([]byte(keyAuth))
}
