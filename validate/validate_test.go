package validate

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNew_AppliesDefaults(t *testing.T) {
	t.Parallel()
	v, err := New(Config{Resolvers: []string{"127.0.0.1:53"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.httpPort != 80 || v.httpsPort != 443 || v.tlsPort != 443 || v.timeout != 10*time.Second || v.userAgent != "caddyacmegw-validator" {
		t.Errorf("defaults not applied: %+v", v)
	}
	if v.resolver.queryTimeout <= 0 || v.resolver.queryTimeout >= v.timeout {
		t.Errorf("query timeout %s should be a fraction of %s", v.resolver.queryTimeout, v.timeout)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ResolverWithoutPort", Config{Resolvers: []string{"127.0.0.1"}}, "resolver"},
		{"ResolverBadPort", Config{Resolvers: []string{"127.0.0.1:dns"}}, "resolver"},
		{"ResolverNoHost", Config{Resolvers: []string{":53"}}, "resolver"},
		{"HTTPPortTooBig", Config{Resolvers: []string{"127.0.0.1:53"}, HTTPPort: 70000}, "http port"},
		{"NegativeHTTPPort", Config{Resolvers: []string{"127.0.0.1:53"}, HTTPPort: -1}, "http port"},
		{"TLSPortTooBig", Config{Resolvers: []string{"127.0.0.1:53"}, TLSPort: 65536}, "tls port"},
		{"BadCAAIdentity", Config{Resolvers: []string{"127.0.0.1:53"}, CAAIdentities: []string{"ca.test/x"}}, "CAA identity"},
		{"NegativeTimeout", Config{Resolvers: []string{"127.0.0.1:53"}, Timeout: -time.Second}, "timeout"},
		{"InvalidDenyNetwork", Config{Resolvers: []string{"127.0.0.1:53"}, DenyNetworks: []netip.Prefix{{}}}, "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestSystemResolvers_ReadsResolvConf(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "search example.test\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := systemResolvers(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.1:53", "[2001:db8::1]:53"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := systemResolvers(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing resolv.conf: want an error")
	}
}

func TestDenied_MatchesMappedAddresses(t *testing.T) {
	t.Parallel()
	v, err := New(Config{
		Resolvers:    []string{"127.0.0.1:53"},
		DenyNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:192.168.0.0/112")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3":           true,
		"::ffff:10.1.2.3":    true,
		"192.168.4.5":        true,
		"192.169.0.1":        false,
		"11.0.0.1":           false,
		"2001:db8::10.1.2.3": false,
	} {
		if got := v.denied(netip.MustParseAddr(addr)); got != want {
			t.Errorf("denied(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestError_MessageAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("root cause")
	e := &Error{Kind: KindDNS, Detail: "DNS problem: SERVFAIL", Err: cause}
	if got, want := e.Error(), "validate: dns: DNS problem: SERVFAIL: root cause"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", e), cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got, want := (&Error{Kind: KindUnauthorized, Detail: "no"}).Error(), "validate: unauthorized: no"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
