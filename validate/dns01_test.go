package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testKeyAuth = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

func digest(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newTestValidator returns a Validator using the given resolvers and a
// short timeout so failure cases stay fast.
func newTestValidator(t *testing.T, cfg Config) *Validator {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantError checks err is an *Error of kind whose Detail contains every
// one of details; kind "" means err must be nil.
func wantError(t *testing.T, err error, kind Kind, details ...string) {
	t.Helper()
	if kind == "" {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	t.Logf("got: %v", err)
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("want *Error of kind %s, got %T %v", kind, err, err)
	}
	if ve.Kind != kind {
		t.Fatalf("want kind %s, got %s (%v)", kind, ve.Kind, err)
	}
	for _, d := range details {
		if !strings.Contains(ve.Detail, d) {
			t.Errorf("Detail %q does not contain %q", ve.Detail, d)
		}
	}
}

func txt(name string, values ...string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%s 60 IN TXT %s", name, strings.Join(quoted, " "))
}

func TestDNS01(t *testing.T) {
	good := digest(testKeyAuth)
	const name = "_acme-challenge.example.test."
	tests := []struct {
		name    string
		records []string
		behave  map[string]behaviour
		chase   bool
		timeout time.Duration
		kind    Kind
		details []string
	}{
		{name: "MatchingRecord", records: []string{txt(name, good)}},
		{name: "OneOfSeveralMatches", records: []string{txt(name, "nope"), txt(name, good), txt(name, "other")}},
		{name: "MultiStringRecordJoined", records: []string{txt(name, good[:20], good[20:])}},
		{
			name:    "CNAMEChainAcrossQueries",
			records: []string{name + " 60 IN CNAME a.other.test.", "a.other.test. 60 IN CNAME b.other.test.", txt("b.other.test.", good)},
		},
		{
			name:    "CNAMEChainInOneAnswer",
			records: []string{name + " 60 IN CNAME a.other.test.", "a.other.test. 60 IN CNAME b.other.test.", txt("b.other.test.", good)},
			chase:   true,
		},
		{
			name:    "TruncatedUDPRetriedOverTCP",
			records: []string{txt(name, good)},
			behave:  map[string]behaviour{name: {truncateUDP: true}},
		},
		{
			name:    "NoMatch",
			records: []string{txt(name, "wrong-value"), txt(name, "stale")},
			kind:    KindUnauthorized,
			details: []string{"no TXT record matched", "_acme-challenge.example.test", `"wrong-value"`, "found 2"},
		},
		{
			name:    "NoTXTRecord",
			records: []string{"_acme-challenge.example.test. 60 IN A 127.0.0.1"},
			kind:    KindUnauthorized,
			details: []string{"no TXT record found at _acme-challenge.example.test"},
		},
		{
			name:    "NXDOMAIN",
			kind:    KindDNS,
			details: []string{"NXDOMAIN", "TXT", "_acme-challenge.example.test"},
		},
		{
			name:    "NXDOMAINAtEndOfCNAME",
			records: []string{name + " 60 IN CNAME gone.other.test."},
			kind:    KindDNS,
			details: []string{"NXDOMAIN", "gone.other.test"},
		},
		{
			name:    "SERVFAIL",
			records: []string{txt(name, good)},
			behave:  map[string]behaviour{name: {rcode: dns.RcodeServerFailure}},
			kind:    KindDNS,
			details: []string{"SERVFAIL", "_acme-challenge.example.test"},
		},
		{
			name:    "Timeout",
			records: []string{txt(name, good)},
			behave:  map[string]behaviour{name: {delay: 5 * time.Second}},
			timeout: 300 * time.Millisecond,
			kind:    KindDNS,
			details: []string{"timed out", "_acme-challenge.example.test"},
		},
		{
			name:    "CNAMELoop",
			records: []string{name + " 60 IN CNAME a.other.test.", "a.other.test. 60 IN CNAME " + name},
			kind:    KindDNS,
			details: []string{"CNAME chain longer than 8"},
		},
		{
			name:    "CNAMELoopInOneAnswer",
			records: []string{name + " 60 IN CNAME a.other.test.", "a.other.test. 60 IN CNAME " + name},
			chase:   true,
			kind:    KindDNS,
			details: []string{"CNAME chain longer than 8"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestDNS(t, tc.records...)
			srv.setChase(tc.chase)
			for n, b := range tc.behave {
				srv.setBehaviour(n, b)
			}
			v := newTestValidator(t, Config{Resolvers: []string{srv.addr}, Timeout: tc.timeout})

			start := time.Now()
			err := v.DNS01(context.Background(), "example.test", testKeyAuth)
			wantError(t, err, tc.kind, tc.details...)
			if tc.timeout > 0 && time.Since(start) > 3*tc.timeout {
				t.Errorf("took %s, want about %s", time.Since(start), tc.timeout)
			}
			if tc.behave[name].truncateUDP && srv.count("tcp") == 0 {
				t.Error("truncated UDP answer was not retried over TCP")
			}
		})
	}
}

func TestDNS01_DetailListsFewTruncatedValues(t *testing.T) {
	t.Parallel()
	const name = "_acme-challenge.example.test."
	var records []string
	for i := range 10 {
		records = append(records, txt(name, fmt.Sprintf("%d%s", i, strings.Repeat("x", 200))))
	}
	srv := newTestDNS(t, records...)
	v := newTestValidator(t, Config{Resolvers: []string{srv.addr}})

	err := v.DNS01(context.Background(), "example.test", testKeyAuth)
	wantError(t, err, KindUnauthorized, "no TXT record matched", "found 10", "...")
	var ve *Error
	errors.As(err, &ve)
	if len(ve.Detail) > 400 {
		t.Errorf("Detail is %d bytes, want it bounded: %s", len(ve.Detail), ve.Detail)
	}
}

func TestDNS01_FallsBackToNextResolver(t *testing.T) {
	const name = "_acme-challenge.example.test."
	good := digest(testKeyAuth)
	tests := []struct {
		name  string
		first func(t *testing.T) string
	}{
		{name: "FirstServesSERVFAIL", first: func(t *testing.T) string {
			s := newTestDNS(t, txt(name, good))
			s.setBehaviour(name, behaviour{rcode: dns.RcodeServerFailure})
			return s.addr
		}},
		{name: "FirstRefuses", first: func(t *testing.T) string {
			s := newTestDNS(t, txt(name, good))
			s.setBehaviour(name, behaviour{rcode: dns.RcodeRefused})
			return s.addr
		}},
		{name: "FirstIsDown", first: closedUDPPort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			second := newTestDNS(t, txt(name, good))
			v := newTestValidator(t, Config{Resolvers: []string{tc.first(t), second.addr}})
			wantError(t, v.DNS01(context.Background(), "example.test", testKeyAuth), "")
		})
	}
}

func TestDNS01_QueryHasRDAndEDNS0(t *testing.T) {
	t.Parallel()
	srv := newTestDNS(t, txt("_acme-challenge.example.test.", digest(testKeyAuth)))
	v := newTestValidator(t, Config{Resolvers: []string{srv.addr}})
	wantError(t, v.DNS01(context.Background(), "example.test", testKeyAuth), "")

	q := srv.lastQuery()
	if !q.RecursionDesired {
		t.Error("RD bit not set")
	}
	opt := q.IsEdns0()
	if opt == nil {
		t.Fatal("no EDNS0 OPT record")
	}
	if opt.UDPSize() < 1232 {
		t.Errorf("EDNS0 UDP size %d, want at least 1232", opt.UDPSize())
	}
}

func TestDNS01_RejectsCallerBugs(t *testing.T) {
	t.Parallel()
	v := newTestValidator(t, Config{Resolvers: []string{"127.0.0.1:1"}})
	for _, domain := range []string{"", "*.example.test", strings.Repeat("a", 300)} {
		err := v.DNS01(context.Background(), domain, testKeyAuth)
		var ve *Error
		if err == nil || errors.As(err, &ve) {
			t.Errorf("DNS01(%q) = %v, want a plain error", domain, err)
		}
	}
}

func TestDNS01_HonoursContext(t *testing.T) {
	t.Parallel()
	const name = "_acme-challenge.example.test."
	srv := newTestDNS(t, txt(name, digest(testKeyAuth)))
	srv.setBehaviour(name, behaviour{delay: 5 * time.Second})
	v := newTestValidator(t, Config{Resolvers: []string{srv.addr}, Timeout: 5 * time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	wantError(t, v.DNS01(ctx, "example.test", testKeyAuth), KindDNS, "timed out")
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s despite a 200ms context", d)
	}
}
