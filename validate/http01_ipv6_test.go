package validate

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHTTP01_ValidatesOverIPv6 serves the challenge on [::1] only, for a
// name with an AAAA record and no A record: validation must reach it over
// IPv6, and the server must see an IPv6 peer.
func TestHTTP01_ValidatesOverIPv6(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("IPv6 loopback unavailable: %v", err)
	}
	peers := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case peers <- r.RemoteAddr:
		default:
		}
		fmt.Fprint(w, testKeyAuth)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	port := l.Addr().(*net.TCPAddr).Port

	dnsSrv := newTestDNS(t, "v6only.test. 60 IN AAAA ::1")
	v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port})
	wantError(t, v.HTTP01(context.Background(), "v6only.test", testToken, testKeyAuth), "")
	if host, _, _ := net.SplitHostPort(<-peers); host != "::1" {
		t.Fatalf("served to %q, want ::1", host)
	}
}
