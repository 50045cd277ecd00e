package integration

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cmd/acmeload/loadgen"
	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// TestAcmeload_RunsLoadAgainstGateway runs cmd/acmeload's load generator,
// with its own DNS server and http-01 responder, against the gateway: a
// small load must issue every certificate it asks for, without errors.
func TestAcmeload_RunsLoadAgainstGateway(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		// directives configure the gateway for the load generator's DNS
		// address and http-01 port.
		directives string
		eab        bool
	}{
		{"dns-01", acme.ChallengeTypeDNS01, "storage memory\nchallenges dns-01\nresolvers %s", false},
		{"http-01", acme.ChallengeTypeHTTP01, "storage memory\nchallenges http-01\nresolvers %s\nhttp_port %d", false},
		{"external account binding", acme.ChallengeTypeDNS01, "storage memory\nregistration preregistered\nchallenges dns-01\nresolvers %s", true},
	}
	const workers, certs = 4, 20
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The DNS server and responder start first: the gateway is
			// configured with their addresses.
			http01, err := testsrv.StartHTTP01("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = http01.Close() })
			dns, err := testsrv.StartZoneDNS("127.0.0.1:0", net.IPv4(127, 0, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = dns.Close() })
			directives := fmt.Sprintf(tc.directives, dns.Addr())
			if tc.challenge == acme.ChallengeTypeHTTP01 {
				directives = fmt.Sprintf(tc.directives, dns.Addr(), http01.Port())
			}
			g := startCaddy(t, directives)

			rootPEM, err := os.ReadFile(g.RootFile)
			if err != nil {
				t.Fatal(err)
			}
			client, err := loadgen.NewHTTPClient(rootPEM, false, workers, false)
			if err != nil {
				t.Fatal(err)
			}
			cfg := loadgen.Config{
				Directory:    g.Directory,
				Workers:      workers,
				Certificates: certs,
				Duration:     2 * time.Minute,
				Challenge:    tc.challenge,
				PollInterval: 20 * time.Millisecond,
				HTTPClient:   client,
				DNS:          dns,
				HTTP01:       http01,
			}
			if tc.eab {
				officer := g.admin()
				for range workers {
					reg := officer.createRegistration(t, map[string]any{"allowed_domains": []string{"example.com"}})
					eab, err := loadgen.NewEAB(reg.KeyID, reg.HMACKey)
					if err != nil {
						t.Fatal(err)
					}
					cfg.EAB = append(cfg.EAB, eab)
				}
			}

			report, err := loadgen.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if report.Issued != certs || report.Errors != 0 || report.Abandoned != 0 {
				t.Errorf("issued %d, errors %d, abandoned %d; want %d, 0, 0; top errors %+v",
					report.Issued, report.Errors, report.Abandoned, certs, report.TopErrors)
			}
			l := report.Latency
			if l.P50 <= 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max {
				t.Errorf("latencies not positive and ordered: %+v", l)
			}
			if report.CertsPerSecond() <= 0 {
				t.Errorf("certs/s %v", report.CertsPerSecond())
			}
			if tc.eab {
				if n := len(g.admin().accounts(t, "")); n != workers {
					t.Errorf("%d accounts, want one per worker (%d)", n, workers)
				}
			}
		})
	}
}
