package validate

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testAccount = "https://acme.test/acme/account/1"

func caa(name string, flag int, tag, value string) string {
	return strings.Join([]string{name, "60 IN CAA", strconv.Itoa(flag), tag, `"` + value + `"`}, " ")
}

func TestCAA(t *testing.T) {
	const (
		name   = "www.example.test."
		parent = "example.test."
	)
	tests := []struct {
		name      string
		records   []string
		behave    map[string]behaviour
		chase     bool
		wildcard  bool
		method    string // default http-01
		account   string // default testAccount
		timeout   time.Duration
		kind      Kind
		details   []string
		lastQuery string // the name asked last, when it says where the climb stopped
	}{
		{name: "NoCAAAnywhere", records: []string{name + " 60 IN A 127.0.0.1"}, lastQuery: "test."},
		{name: "IssueAtNameNamesUs", records: []string{caa(name, 0, "issue", "ca.test")}, lastQuery: name},
		{name: "IssuerCaseInsensitive", records: []string{caa(name, 0, "ISSUE", "CA.Test")}},
		{
			name: "IssueAtNameNamesOtherCA", records: []string{caa(name, 0, "issue", "other.ca")},
			kind: KindCAA, details: []string{"www.example.test (at www.example.test)", `0 issue "other.ca"`},
		},
		{name: "IssueAtParentNamesUs", records: []string{caa(parent, 0, "issue", "ca.test")}, lastQuery: parent},
		{
			name: "IssueAtParentNamesOtherCA", records: []string{caa(parent, 0, "issue", "other.ca")},
			kind: KindCAA, details: []string{"www.example.test (at example.test)", `"other.ca"`},
		},
		{
			name:    "NameSetOverridesParent",
			records: []string{caa(name, 0, "issue", "ca.test"), caa(parent, 0, "issue", "other.ca")},
		},
		{
			name:    "OneOfSeveralPermits",
			records: []string{caa(name, 0, "issue", "other.ca"), caa(name, 0, "issue", "ca.test; validationmethods=http-01")},
		},
		{
			name: "WildcardUsesIssuewild", wildcard: true, kind: KindCAA, details: []string{`0 issuewild "other.ca"`},
			records: []string{caa(name, 0, "issue", "ca.test"), caa(name, 0, "issuewild", "other.ca")},
		},
		{
			name: "WildcardIssuewildNamesUs", wildcard: true,
			records: []string{caa(name, 0, "issue", "other.ca"), caa(name, 0, "issuewild", "ca.test")},
		},
		{name: "WildcardFallsBackToIssue", wildcard: true, records: []string{caa(name, 0, "issue", "ca.test")}},
		{
			name: "WildcardFallsBackToIssueOtherCA", wildcard: true, kind: KindCAA,
			records: []string{caa(name, 0, "issue", "other.ca")},
		},
		{
			name: "NonWildcardIgnoresIssuewild", kind: KindCAA, details: []string{`0 issue "other.ca"`},
			records: []string{caa(name, 0, "issue", "other.ca"), caa(name, 0, "issuewild", "ca.test")},
		},
		{name: "OnlyIssuewildAllowsNonWildcard", records: []string{caa(name, 0, "issuewild", "other.ca")}},
		{name: "OnlyIodefAllows", records: []string{caa(name, 0, "iodef", "mailto:security@example.test")}},
		{name: "AccountURIMatches", records: []string{caa(name, 0, "issue", "ca.test; accounturi="+testAccount)}},
		{
			name: "AccountURIMismatch", kind: KindCAA, details: []string{"accounturi=https://acme.test/acme/account/2"},
			records: []string{caa(name, 0, "issue", "ca.test; accounturi=https://acme.test/acme/account/2")},
		},
		{
			name: "AccountURIWithoutAccount", account: "-", kind: KindCAA,
			records: []string{caa(name, 0, "issue", "ca.test; accounturi="+testAccount)},
		},
		{name: "ValidationMethodsMatch", records: []string{caa(name, 0, "issue", "ca.test; validationmethods=dns-01,http-01")}},
		{
			name: "ValidationMethodsMismatch", method: "tls-alpn-01", kind: KindCAA, details: []string{"validationmethods=dns-01,http-01"},
			records: []string{caa(name, 0, "issue", "ca.test; validationmethods=dns-01,http-01")},
		},
		{
			name: "UnknownCriticalTagForbids", kind: KindCAA, details: []string{"unknown critical property", `128 tbs "x"`},
			records: []string{caa(name, 0, "issue", "ca.test"), caa(name, 128, "tbs", "x")},
		},
		{name: "UnknownNonCriticalTagIgnored", records: []string{caa(name, 0, "issue", "ca.test"), caa(name, 0, "tbs", "x")}},
		{name: "EmptyIssuerForbids", records: []string{caa(name, 0, "issue", ";")}, kind: KindCAA, details: []string{`";"`}},
		{name: "MalformedValueForbids", records: []string{caa(name, 0, "issue", "ca.test; accounturi")}, kind: KindCAA},
		{
			name: "SERVFAILAtName", records: []string{caa(parent, 0, "issue", "ca.test")},
			behave: map[string]behaviour{name: {rcode: dns.RcodeServerFailure}},
			kind:   KindDNS, details: []string{"CAA lookup failed", "SERVFAIL", "www.example.test"},
		},
		{
			name: "SERVFAILAtParent", records: []string{caa("test.", 0, "issue", "ca.test")},
			behave: map[string]behaviour{parent: {rcode: dns.RcodeServerFailure}},
			kind:   KindDNS, details: []string{"CAA lookup failed", "SERVFAIL", "example.test"},
		},
		{
			name: "Timeout", records: []string{caa(name, 0, "issue", "ca.test")}, timeout: 300 * time.Millisecond,
			behave: map[string]behaviour{name: {delay: 5 * time.Second}},
			kind:   KindDNS, details: []string{"CAA lookup failed", "timed out"},
		},
		{
			name:    "CNAMEAtNameTargetForbids",
			records: []string{name + " 60 IN CNAME cdn.other.test.", caa("cdn.other.test.", 0, "issue", "other.ca"), caa(parent, 0, "issue", "ca.test")},
			kind:    KindCAA, details: []string{`"other.ca"`},
		},
		{
			name:    "CNAMEChasedByResolver",
			records: []string{name + " 60 IN CNAME cdn.other.test.", caa("cdn.other.test.", 0, "issue", "ca.test")},
			chase:   true,
		},
		{
			// RFC 8659 climbs from the name, not from the CNAME's target.
			name:    "CNAMETargetWithoutCAAClimbsFromName",
			records: []string{name + " 60 IN CNAME cdn.other.test.", "cdn.other.test. 60 IN A 127.0.0.1", caa("other.test.", 0, "issue", "other.ca"), caa(parent, 0, "issue", "ca.test")},
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
			v := newTestValidator(t, Config{Resolvers: []string{srv.addr}, Timeout: tc.timeout, CAAIdentities: []string{"other.example", "CA.test."}})
			method, account := cmp(tc.method, "http-01"), cmp(tc.account, testAccount)
			if account == "-" {
				account = ""
			}
			err := v.CAA(context.Background(), "www.example.test", tc.wildcard, account, method)
			wantError(t, err, tc.kind, tc.details...)
			if tc.lastQuery != "" {
				if q := srv.lastQuery(); q == nil || q.Question[0].Name != tc.lastQuery || q.Question[0].Qtype != dns.TypeCAA {
					t.Errorf("last query %v, want CAA %s", q, tc.lastQuery)
				}
			}
		})
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestCAA_OffOrNotApplicableAsksNothing(t *testing.T) {
	t.Parallel()
	srv := newTestDNS(t, caa("example.test.", 0, "issue", "other.ca"))
	off := newTestValidator(t, Config{Resolvers: []string{srv.addr}})
	wantError(t, off.CAA(context.Background(), "example.test", false, testAccount, "http-01"), "")
	on := newTestValidator(t, Config{Resolvers: []string{srv.addr}, CAAIdentities: []string{"ca.test"}})
	wantError(t, on.CAA(context.Background(), "127.0.0.1", false, testAccount, "http-01"), "")
	wantError(t, on.CAA(context.Background(), "2001:db8::1", false, testAccount, "http-01"), "")
	if n := srv.count("udp") + srv.count("tcp"); n != 0 {
		t.Errorf("%d queries sent, want none", n)
	}
}

func TestCAA_RejectsCallerBugs(t *testing.T) {
	t.Parallel()
	v := newTestValidator(t, Config{Resolvers: []string{"127.0.0.1:1"}, CAAIdentities: []string{"ca.test"}})
	for _, name := range []string{"", "*.example.test", strings.Repeat("a", 300)} {
		err := v.CAA(context.Background(), name, false, testAccount, "http-01")
		var ve *Error
		if err == nil || errors.As(err, &ve) {
			t.Errorf("CAA(%q) = %v, want a plain error", name, err)
		}
	}
	if _, err := New(Config{Resolvers: []string{"127.0.0.1:53"}, CAAIdentities: []string{"ca test"}}); err == nil {
		t.Error("New accepted a CAA identity that is not a domain name")
	}
}

func TestParseCAAIssueValue(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in     string
		issuer string
		params map[string]string
	}{
		{"ca.test", "ca.test", map[string]string{}},
		{" \tca.test \t", "ca.test", map[string]string{}},
		{"CA.Test", "ca.test", map[string]string{}},
		{"ca.test;", "ca.test", map[string]string{}},
		{";", "", map[string]string{}},
		{"", "", map[string]string{}},
		{" ; ", "", map[string]string{}},
		{"x-1.ca0.test", "x-1.ca0.test", map[string]string{}},
		{
			"ca.test; accounturi=https://ca.test/acct/1 ;validationmethods=dns-01,http-01",
			"ca.test", map[string]string{"accounturi": "https://ca.test/acct/1", "validationmethods": "dns-01,http-01"},
		},
		{"ca.test; AccountURI=x", "ca.test", map[string]string{"accounturi": "x"}},
		{"ca.test; a = b ;", "ca.test", map[string]string{"a": "b"}},
		{"ca.test; a=", "ca.test", map[string]string{"a": ""}},
		{"; a=b", "", map[string]string{"a": "b"}},
		{"ca.test; a=x=y", "ca.test", map[string]string{"a": "x=y"}},
	}
	for _, tc := range ok {
		issuer, params, err := parseCAAIssueValue(tc.in)
		if err != nil || issuer != tc.issuer || !maps.Equal(params, tc.params) {
			t.Errorf("parseCAAIssueValue(%q) = %q, %v, %v; want %q, %v", tc.in, issuer, params, err, tc.issuer, tc.params)
		}
	}
	for _, in := range []string{
		"ca_test", "-ca.test", "ca-.test", "ca..test", "ca.test.", ".ca.test", "ca test", "ca.tést",
		"ca.test; a", "ca.test; a=b c", "ca.test; =b", "ca.test; a=b; a=c", "ca.test; A=b; a=c",
		"ca.test;; a=b", "ca.test; a;b=c", "ca.test; a\x00=b", "ca.test; a=é", "ca.test; a b=c",
		strings.Repeat("a", 64) + ".test",
	} {
		if issuer, params, err := parseCAAIssueValue(in); err == nil {
			t.Errorf("parseCAAIssueValue(%q) = %q, %v; want an error", in, issuer, params)
		}
	}
}
