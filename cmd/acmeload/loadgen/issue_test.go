package loadgen

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// startTestCA starts ca with a DNS server and an http-01 responder of its
// own for the solvers to present on, and returns the configuration of a
// run against it.
func startTestCA(t *testing.T, ca *fakeCA, challenge string) Config {
	t.Helper()
	http01, err := testsrv.StartHTTP01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = http01.Close() })
	ca.dns, ca.http01 = startTestDNS(t, net.IPv4(127, 0, 0, 1)), http01
	startFakeCA(t, ca)
	return Config{
		Directory:    ca.srv.URL + "/directory",
		Challenge:    challenge,
		PollInterval: time.Millisecond,
		DNS:          ca.dns,
		HTTP01:       http01,
	}
}

// startTestDNS starts a DNS server that resolves every name to a and is
// shut down when the test ends.
func startTestDNS(t *testing.T, a net.IP) *testsrv.ZoneDNS {
	t.Helper()
	s, err := testsrv.StartZoneDNS("127.0.0.1:0", a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestIssue_PollsOnlyWhereTheAnswerIsNotFinal(t *testing.T) {
	tests := []struct {
		name         string
		ca           *fakeCA
		challenge    string
		wantRequests []string
		wantKind     string // of the error; none when issued
	}{
		{"challenge answered valid: no poll", &fakeCA{}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "challenge", "finalize", "certificate"}, ""},
		{"http-01 answered valid: no poll", &fakeCA{}, acme.ChallengeTypeHTTP01,
			[]string{"new-order", "authz", "challenge", "finalize", "certificate"}, ""},
		{"challenge answered processing: authorization polled", &fakeCA{deferValidation: true}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "challenge", "authz", "finalize", "certificate"}, ""},
		{"authorization valid already: no challenge", &fakeCA{authzValid: true}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "finalize", "certificate"}, ""},
		{"finalization answered processing: order polled", &fakeCA{deferIssuance: true}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "challenge", "finalize", "order", "certificate"}, ""},
		{"challenge answered invalid: fails without a poll", &fakeCA{rejectResponse: true}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "challenge"}, "validation: " + acme.ProblemTypeIncorrectResponse},
		{"authorization polled invalid", &fakeCA{deferValidation: true, rejectResponse: true}, acme.ChallengeTypeDNS01,
			[]string{"new-order", "authz", "challenge", "authz"}, "validation: " + acme.ProblemTypeIncorrectResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := startTestCA(t, tc.ca, tc.challenge).withDefaults()
			w, err := newWorker(t.Context(), cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{"w0-1.load.example.com"}
			csr, err := newCSR("ec256", names)
			if err != nil {
				t.Fatal(err)
			}

			err = w.issue(t.Context(), names, csr)
			switch {
			case tc.wantKind == "" && err != nil:
				t.Fatalf("not issued: %v", err)
			case tc.wantKind != "" && err == nil:
				t.Fatalf("issued; want an error of kind %q", tc.wantKind)
			case err != nil:
				if kind, _ := classify(err, names[0]); kind != tc.wantKind {
					t.Errorf("error %v of kind %q, want %q", err, kind, tc.wantKind)
				}
			}
			if got := tc.ca.requests(); !slices.Equal(got, tc.wantRequests) {
				t.Errorf("requests %q, want %q", got, tc.wantRequests)
			}
			if n := cfg.DNS.TXTRecords() + cfg.HTTP01.Tokens(); n != 0 {
				t.Errorf("%d responses left presented after the issuance", n)
			}
		})
	}
}

func TestRun_IssuesWithoutPollsWhenChallengesAnswerValid(t *testing.T) {
	ca := &fakeCA{}
	cfg := startTestCA(t, ca, acme.ChallengeTypeDNS01)
	cfg.Workers, cfg.Certificates, cfg.Duration = 2, 6, 10*time.Second
	cfg.PollInterval = 0 // the default: it must not matter

	report, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if report.Issued != 6 || report.Errors != 0 || report.Abandoned != 0 {
		t.Fatalf("issued %d, errors %d, abandoned %d; want 6, 0, 0; top errors %+v",
			report.Issued, report.Errors, report.Abandoned, report.TopErrors)
	}
	counts := map[string]int{}
	for _, kind := range ca.requests() {
		counts[kind]++
	}
	for _, kind := range []string{"new-order", "authz", "challenge", "finalize", "certificate"} {
		if counts[kind] != 6 {
			t.Errorf("%d %s requests, want one per certificate (6); all: %v", counts[kind], kind, counts)
		}
	}
	if counts["order"] != 0 {
		t.Errorf("%d order polls, want none", counts["order"])
	}
}
