package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testToken     = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	challengePath = "/.well-known/acme-challenge/" + testToken
)

// testZone resolves example.test and other.test to 127.0.0.1 and gives
// dual.test an AAAA of ::1, where the test servers do not listen, so
// validation must fall back to IPv4.
var testZone = []string{
	"example.test. 60 IN A 127.0.0.1",
	"other.test. 60 IN A 127.0.0.1",
	"dual.test. 60 IN AAAA ::1",
	"dual.test. 60 IN A 127.0.0.1",
	"noaddr.test. 60 IN TXT \"no addresses here\"",
}

// redirectChain serves the challenge after n redirects through /hop/1..n.
func redirectChain(n int) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, base string) {
		hop := 0
		if rest, ok := strings.CutPrefix(r.URL.Path, "/hop/"); ok {
			hop, _ = strconv.Atoi(rest)
		}
		if hop < n {
			http.Redirect(w, r, fmt.Sprintf("%s/hop/%d", base, hop+1), http.StatusFound)
			return
		}
		fmt.Fprint(w, testKeyAuth)
	}
}

// stall waits until the client gives up, bounded so a broken client cannot
// hang the test server's Close.
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func TestHTTP01(t *testing.T) {
	tests := []struct {
		name    string
		domain  string // default example.test
		handle  func(w http.ResponseWriter, r *http.Request, base string)
		timeout time.Duration
		kind    Kind
		details []string
		absent  []string // what Detail must not quote: body bytes
	}{
		{name: "RightBody", handle: func(w http.ResponseWriter, r *http.Request, _ string) {
			fmt.Fprint(w, testKeyAuth)
		}},
		{name: "BodyWithSurroundingWhitespace", handle: func(w http.ResponseWriter, r *http.Request, _ string) {
			fmt.Fprint(w, "\r\n \t"+testKeyAuth+" \r\n\n")
		}},
		{name: "FallsBackFromIPv6ToIPv4", domain: "dual.test", handle: func(w http.ResponseWriter, r *http.Request, _ string) {
			fmt.Fprint(w, testKeyAuth)
		}},
		{name: "IPAddressIdentifier", domain: "127.0.0.1", handle: func(w http.ResponseWriter, r *http.Request, _ string) {
			fmt.Fprint(w, testKeyAuth)
		}},
		{name: "RedirectToOtherPathAndHost", handle: func(w http.ResponseWriter, r *http.Request, base string) {
			if r.Host == "example.test"+base[strings.LastIndex(base, ":"):] {
				http.Redirect(w, r, strings.Replace(base, "example.test", "other.test", 1)+"/elsewhere", http.StatusMovedPermanently)
				return
			}
			fmt.Fprint(w, testKeyAuth)
		}},
		{name: "TenRedirects", handle: redirectChain(10)},
		{
			name:    "ElevenRedirects",
			handle:  redirectChain(11),
			kind:    KindConnection,
			details: []string{"too many redirects", "/hop/11"},
		},
		{
			name: "RedirectLoop",
			handle: func(w http.ResponseWriter, r *http.Request, base string) {
				http.Redirect(w, r, base+challengePath, http.StatusFound)
			},
			kind:    KindConnection,
			details: []string{"too many redirects"},
		},
		{
			name: "RedirectToOtherPort",
			handle: func(w http.ResponseWriter, r *http.Request, _ string) {
				http.Redirect(w, r, "http://example.test:8081/x", http.StatusFound)
			},
			kind:    KindConnection,
			details: []string{"redirect to", "example.test:8081", "not allowed", "only http on port 80 or "},
		},
		{
			name: "RedirectToOtherScheme",
			handle: func(w http.ResponseWriter, r *http.Request, _ string) {
				http.Redirect(w, r, "ftp://example.test/x", http.StatusFound)
			},
			kind:    KindConnection,
			details: []string{"not allowed"},
		},
		{
			name:    "WrongBody",
			handle:  func(w http.ResponseWriter, r *http.Request, _ string) { fmt.Fprint(w, "not-the-key-authorization") },
			kind:    KindIncorrectResponse,
			details: []string{"did not match", "127.0.0.1:"},
			absent:  []string{"not-the-key"},
		},
		{
			name: "RedirectToInternalPage",
			handle: func(w http.ResponseWriter, r *http.Request, base string) {
				if r.URL.Path != "/admin/secrets" {
					http.Redirect(w, r, base+"/admin/secrets", http.StatusFound)
					return
				}
				fmt.Fprint(w, "db_password=hunter2")
			},
			kind:    KindIncorrectResponse,
			details: []string{"/admin/secrets", "127.0.0.1:"},
			absent:  []string{"hunter2", "db_password"},
		},
		{
			name: "ErrorPageBody",
			handle: func(w http.ResponseWriter, r *http.Request, _ string) {
				http.Error(w, "internal token abc123", http.StatusForbidden)
			},
			kind:    KindUnauthorized,
			details: []string{"HTTP status 403", challengePath, "127.0.0.1:"},
			absent:  []string{"abc123"},
		},
		{
			name: "OversizedBody",
			handle: func(w http.ResponseWriter, r *http.Request, _ string) {
				fmt.Fprint(w, testKeyAuth+strings.Repeat("x", 1<<20))
			},
			kind:    KindIncorrectResponse,
			details: []string{"longer than 1024 bytes"},
		},
		{
			name:    "NotFound",
			handle:  func(w http.ResponseWriter, r *http.Request, _ string) { http.NotFound(w, r) },
			kind:    KindUnauthorized,
			details: []string{"HTTP status 404", challengePath},
		},
		{
			name: "SlowBody",
			handle: func(w http.ResponseWriter, r *http.Request, _ string) {
				fmt.Fprint(w, testKeyAuth[:10])
				w.(http.Flusher).Flush()
				stall(r)
			},
			timeout: 300 * time.Millisecond,
			kind:    KindConnection,
			details: []string{"reading response", "timeout after connect"},
		},
		{
			name:    "SlowHeaders",
			handle:  func(w http.ResponseWriter, r *http.Request, _ string) { stall(r) },
			timeout: 300 * time.Millisecond,
			kind:    KindConnection,
			details: []string{"timeout after connect", "127.0.0.1:"},
		},
		{
			name:    "NXDOMAIN",
			domain:  "missing.test",
			kind:    KindDNS,
			details: []string{"NXDOMAIN", "missing.test"},
		},
		{
			name:    "NoAddresses",
			domain:  "noaddr.test",
			kind:    KindDNS,
			details: []string{"no A or AAAA records found for noaddr.test"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dnsSrv := newTestDNS(t, testZone...)
			var base string
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ua := r.Header.Get("User-Agent"); ua != "caddyacmegw-validator" {
					t.Errorf("User-Agent %q", ua)
				}
				if tc.handle == nil {
					t.Error("unexpected request")
					return
				}
				tc.handle(w, r, base)
			}))
			port := srv.Listener.Addr().(*net.TCPAddr).Port
			base = "http://example.test:" + strconv.Itoa(port)
			srv.Start()
			t.Cleanup(srv.Close)

			domain := tc.domain
			if domain == "" {
				domain = "example.test"
			}
			v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port, Timeout: tc.timeout})

			start := time.Now()
			err := v.HTTP01(context.Background(), domain, testToken, testKeyAuth)
			wantError(t, err, tc.kind, tc.details...)
			for _, a := range tc.absent {
				if err != nil && strings.Contains(err.Error(), a) {
					t.Errorf("problem %q quotes the body (%q)", err, a)
				}
			}
			if tc.timeout > 0 && time.Since(start) > 3*tc.timeout {
				t.Errorf("took %s, want about %s", time.Since(start), tc.timeout)
			}
		})
	}
}

func TestHTTP01_SendsHostAndPath(t *testing.T) {
	t.Parallel()
	dnsSrv := newTestDNS(t, testZone...)
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		fmt.Fprint(w, testKeyAuth)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port, UserAgent: "test-agent"})

	wantError(t, v.HTTP01(context.Background(), "example.test", testToken, testKeyAuth), "")
	r := <-got
	if want := "example.test:" + strconv.Itoa(port); r.Host != want {
		t.Errorf("Host %q, want %q", r.Host, want)
	}
	if r.URL.Path != challengePath {
		t.Errorf("path %q, want %q", r.URL.Path, challengePath)
	}
	if ua := r.Header.Get("User-Agent"); ua != "test-agent" {
		t.Errorf("User-Agent %q, want test-agent", ua)
	}
}

func TestHTTP01_RedirectToHTTPSWithoutCertificateCheck(t *testing.T) {
	t.Parallel()
	dnsSrv := newTestDNS(t, testZone...)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, testKeyAuth)
	}))
	defer tlsSrv.Close()
	tlsPort := tlsSrv.Listener.Addr().(*net.TCPAddr).Port
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("https://example.test:%d/secure", tlsPort), http.StatusFound)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port, HTTPSPort: tlsPort})
	wantError(t, v.HTTP01(context.Background(), "example.test", testToken, testKeyAuth), "")

	// Without HTTPSPort the same redirect targets a port that is not 443.
	v = newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port})
	wantError(t, v.HTTP01(context.Background(), "example.test", testToken, testKeyAuth), KindConnection, "not allowed")
}

func TestHTTP01_ConnectionRefusedNamesAddress(t *testing.T) {
	t.Parallel()
	dnsSrv := newTestDNS(t, testZone...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, HTTPPort: port})
	err = v.HTTP01(context.Background(), "example.test", testToken, testKeyAuth)
	wantError(t, err, KindConnection, fmt.Sprintf("127.0.0.1:%d", port), "connection refused")
}

func TestHTTP01_NeverConnectsToDeniedNetworks(t *testing.T) {
	t.Parallel()
	dnsSrv := newTestDNS(t, testZone...)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, testKeyAuth)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	for _, deny := range []string{"127.0.0.0/8", "::ffff:127.0.0.1/128"} {
		v := newTestValidator(t, Config{
			Resolvers:    []string{dnsSrv.addr},
			HTTPPort:     port,
			DenyNetworks: []netip.Prefix{netip.MustParsePrefix(deny), netip.MustParsePrefix("::1/128")},
		})
		for _, domain := range []string{"example.test", "dual.test", "127.0.0.1"} {
			err := v.HTTP01(context.Background(), domain, testToken, testKeyAuth)
			wantError(t, err, KindConnection, "denied")
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests from denied validations", n)
	}
}

func TestHTTP01_RejectsCallerBugs(t *testing.T) {
	t.Parallel()
	v := newTestValidator(t, Config{Resolvers: []string{"127.0.0.1:1"}})
	for _, tc := range []struct{ domain, token string }{
		{"*.example.test", testToken},
		{"", testToken},
		{"example.test", ""},
		{"example.test", "../../etc/passwd"},
		{"example.test", "a?b=c"},
		{"example.test", testToken + "\x00"},
	} {
		err := v.HTTP01(context.Background(), tc.domain, tc.token, testKeyAuth)
		var ve *Error
		if err == nil || errors.As(err, &ve) {
			t.Errorf("HTTP01(%q, %q) = %v, want a plain error", tc.domain, tc.token, err)
		}
	}
}
