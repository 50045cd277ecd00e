package validate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// acmeExt is an acmeIdentifier extension holding SHA-256(keyAuth).
func acmeExt(t *testing.T, keyAuth string, critical bool) pkix.Extension {
	t.Helper()
	sum := sha256.Sum256([]byte(keyAuth))
	value, err := asn1.Marshal(sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidACMEIdentifier, Critical: critical, Value: value}
}

// alpnCert makes a self-signed certificate with the given SANs and extra
// extensions, as an ACME client answering tls-alpn-01 would.
func alpnCert(t *testing.T, dnsNames []string, ips []string, exts ...pkix.Extension) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "tls-alpn-01 test"},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		DNSNames:        dnsNames,
		ExtraExtensions: exts,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// alpnServer is a TLS server on 127.0.0.1 that records the SNI it sees.
type alpnServer struct {
	port int
	mu   sync.Mutex
	sni  []string
}

func (s *alpnServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...)
}

// newALPNServer serves cert, offering protos over ALPN (none when nil).
func newALPNServer(t *testing.T, cert tls.Certificate, protos []string) *alpnServer {
	t.Helper()
	s := &alpnServer{}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   protos,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hello.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	s.port = serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.Handshake()
		_ = tc.Close()
	})
	return s
}

// serveTCP accepts on a free loopback port and runs handle for each
// connection (with a deadline, closed afterwards); cleanup waits for all.
func serveTCP(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTLSALPN01(t *testing.T) {
	acme := []string{acmeTLSProtocol}
	tests := []struct {
		name       string
		identifier string // default example.test
		cert       func(t *testing.T) tls.Certificate
		protos     []string
		wantSNI    string // default the identifier
		kind       Kind
		details    []string
	}{
		{name: "CorrectCertificate", protos: acme, cert: func(t *testing.T) tls.Certificate {
			return alpnCert(t, []string{"example.test"}, nil, acmeExt(t, testKeyAuth, true))
		}},
		{name: "SANCaseInsensitive", protos: acme, cert: func(t *testing.T) tls.Certificate {
			return alpnCert(t, []string{"EXAMPLE.Test"}, nil, acmeExt(t, testKeyAuth, true))
		}},
		{
			name: "IPIdentifierWithReverseDNSSNI", identifier: "127.0.0.1", wantSNI: "1.0.0.127.in-addr.arpa", protos: acme,
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, nil, []string{"127.0.0.1"}, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "WrongSAN", protos: acme, kind: KindUnauthorized,
			details: []string{"127.0.0.1:", "example.test", "want exactly one subjectAltName DNS:example.test", `DNS:"other.test"`},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"other.test"}, nil, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "TwoSANs", protos: acme, kind: KindUnauthorized, details: []string{"got 2", `DNS:"example.test", DNS:"other.test"`},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test", "other.test"}, nil, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "ExtraIPSAN", protos: acme, kind: KindUnauthorized, details: []string{"got 2", "IP:127.0.0.1"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test"}, []string{"127.0.0.1"}, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "IPIdentifierWithDNSNameSAN", identifier: "127.0.0.1", wantSNI: "1.0.0.127.in-addr.arpa", protos: acme,
			kind: KindUnauthorized, details: []string{"want exactly one subjectAltName IP:127.0.0.1"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"127.0.0.1"}, nil, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "MissingExtension", protos: acme, kind: KindUnauthorized, details: []string{"no acmeIdentifier extension"},
			cert: func(t *testing.T) tls.Certificate { return alpnCert(t, []string{"example.test"}, nil) },
		},
		{
			name: "NonCriticalExtension", protos: acme, kind: KindUnauthorized, details: []string{"acmeIdentifier extension is not critical"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test"}, nil, acmeExt(t, testKeyAuth, false))
			},
		},
		{
			name: "WrongDigest", protos: acme, kind: KindUnauthorized, details: []string{"does not hold the SHA-256 digest"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test"}, nil, acmeExt(t, "other-token.thumbprint", true))
			},
		},
		{
			name: "DigestNotInOctetString", protos: acme, kind: KindUnauthorized, details: []string{"not a SHA-256 digest in an OCTET STRING"},
			cert: func(t *testing.T) tls.Certificate {
				sum := sha256.Sum256([]byte(testKeyAuth))
				return alpnCert(t, []string{"example.test"}, nil, pkix.Extension{Id: oidACMEIdentifier, Critical: true, Value: sum[:]})
			},
		},
		{
			name: "ServerOffersOtherProtocolOnly", protos: []string{"h2", "http/1.1"}, kind: KindTLS,
			details: []string{"TLS handshake with 127.0.0.1:", "no application protocol"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test"}, nil, acmeExt(t, testKeyAuth, true))
			},
		},
		{
			name: "ServerIgnoresALPN", kind: KindTLS, details: []string{"did not negotiate acme-tls/1"},
			cert: func(t *testing.T) tls.Certificate {
				return alpnCert(t, []string{"example.test"}, nil, acmeExt(t, testKeyAuth, true))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			identifier := tc.identifier
			if identifier == "" {
				identifier = "example.test"
			}
			srv := newALPNServer(t, tc.cert(t), tc.protos)
			dnsSrv := newTestDNS(t, testZone...)
			v := newTestValidator(t, Config{Resolvers: []string{dnsSrv.addr}, TLSPort: srv.port})

			wantError(t, v.TLSALPN01(context.Background(), identifier, testKeyAuth), tc.kind, tc.details...)
			wantSNI := tc.wantSNI
			if wantSNI == "" {
				wantSNI = identifier
			}
			if got := srv.seen(); len(got) != 1 || got[0] != wantSNI {
				t.Errorf("server saw SNI %q, want [%s]", got, wantSNI)
			}
		})
	}
}

func TestTLSALPN01_ConnectionFailures(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(net.Conn) // nil: nothing listens on the port
		deny    string
		timeout time.Duration
		kind    Kind
		details []string
	}{
		{name: "Refused", kind: KindConnection, details: []string{"127.0.0.1:", "connection refused"}},
		{
			name: "DeniedAddress", deny: "127.0.0.0/8", kind: KindConnection, details: []string{"example.test", "deny_validation_to"},
			handle: func(c net.Conn) { t.Error("connected to a denied address") },
		},
		{
			// Closed (a FIN, or a RST when the ClientHello was unread).
			name: "ClosedDuringHandshake", handle: func(c net.Conn) { _, _ = c.Read(make([]byte, 4096)) }, kind: KindConnection,
			details: []string{"TLS handshake with 127.0.0.1:", "for example.test"},
		},
		{
			// Reads until the validator gives up and closes.
			name: "ServerStalls", handle: func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }, timeout: 300 * time.Millisecond,
			kind: KindConnection, details: []string{"TLS handshake with 127.0.0.1:", "timeout"},
		},
		{
			name: "NotTLS", handle: func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, kind: KindTLS,
			details: []string{"TLS handshake with 127.0.0.1:", "failed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var port int
			if tc.handle != nil {
				port = serveTCP(t, tc.handle)
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				port = ln.Addr().(*net.TCPAddr).Port
				ln.Close()
			}
			cfg := Config{Resolvers: []string{newTestDNS(t, testZone...).addr}, TLSPort: port, Timeout: tc.timeout}
			if tc.deny != "" {
				cfg.DenyNetworks = []netip.Prefix{netip.MustParsePrefix(tc.deny)}
			}
			v := newTestValidator(t, cfg)
			wantError(t, v.TLSALPN01(context.Background(), "example.test", testKeyAuth), tc.kind, tc.details...)
		})
	}
}

func TestTLSALPN01_UnknownNameIsDNSError(t *testing.T) {
	t.Parallel()
	v := newTestValidator(t, Config{Resolvers: []string{newTestDNS(t, testZone...).addr}})
	wantError(t, v.TLSALPN01(context.Background(), "missing.test", testKeyAuth), KindDNS, "NXDOMAIN", "missing.test")
}

func TestTLSALPN01_RejectsCallerBugs(t *testing.T) {
	t.Parallel()
	v := newTestValidator(t, Config{Resolvers: []string{"127.0.0.1:1"}})
	for _, tc := range []struct{ identifier, keyAuth string }{
		{"example.test", ""},
		{"*.example.test", testKeyAuth},
		{"fe80::1%eth0", testKeyAuth},
		{"", testKeyAuth},
	} {
		err := v.TLSALPN01(context.Background(), tc.identifier, tc.keyAuth)
		var ve *Error
		if err == nil || errors.As(err, &ve) {
			t.Errorf("TLSALPN01(%q, %q) = %v, want a plain error", tc.identifier, tc.keyAuth, err)
		}
	}
}

func TestReverseName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"1.2.3.4":            "4.3.2.1.in-addr.arpa",
		"::ffff:1.2.3.4":     "4.3.2.1.in-addr.arpa",
		"2001:db8::567:89ab": "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	} {
		if got := reverseName(netip.MustParseAddr(in)); got != want {
			t.Errorf("reverseName(%s) = %q, want %q", in, got, want)
		}
	}
}
