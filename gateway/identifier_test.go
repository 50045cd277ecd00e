package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func dnsIDs(names ...string) []identifier {
	ids := make([]identifier, len(names))
	for i, n := range names {
		ids[i] = identifier{Type: "dns", Value: n}
	}
	return ids
}

func TestCheckDNSName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 253 characters: three 63-character labels, one of 61, dots between.
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	tests := []struct {
		name  string
		value string
		ok    bool
	}{
		{"two labels", "example.com", true},
		{"many labels", "a.b.c.d.example.com", true},
		{"digits in labels", "web01.example.com", true},
		{"all-digit inner label", "123.example.com", true},
		{"inner hyphen", "my-host.example.com", true},
		{"punycode A-label", "xn--bcher-kva.example", true},
		{"label of 63", label63 + ".example.com", true},
		{"label of 64", label63 + "a.example.com", false},
		{"name of 253", name253, true},
		{"name of 254", "c" + name253, false},
		{"empty", "", false},
		{"single label", "localhost", false},
		{"trailing dot", "example.com.", false},
		{"leading dot", ".example.com", false},
		{"empty inner label", "a..example.com", false},
		{"leading hyphen", "-host.example.com", false},
		{"trailing hyphen", "host-.example.com", false},
		{"hyphen-only label", "-.example.com", false},
		{"underscore", "_acme-challenge.example.com", false},
		{"underscore inside", "my_host.example.com", false},
		{"upper case (callers lower it first)", "Example.com", false},
		{"non-ASCII U-label", "bücher.example", false},
		{"space", "my host.example.com", false},
		{"slash", "example.com/path", false},
		{"port", "example.com:443", false},
		{"IPv4 literal", "192.0.2.1", false},
		{"IPv6 literal", "2001:db8::1", false},
		{"IPv6 loopback", "::1", false},
		{"bracketed IPv6", "[2001:db8::1]", false},
		{"wildcard", "*.example.com", true},
		{"wildcard over a deep name", "*.a.b.example.com", true},
		{"wildcard over a single label", "*.com", false},
		{"bare wildcard", "*", false},
		{"wildcard not leftmost", "a.*.example.com", false},
		{"two wildcards", "*.*.example.com", false},
		{"partial wildcard label", "*a.example.com", false},
		{"wildcard suffix in label", "a*.example.com", false},
		{"wildcard without dot", "*example.com", false},
		{"wildcard over a trailing dot", "*.example.com.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDNSName(tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("checkDNSName(%q) = %v, want ok=%v", tt.value, err, tt.ok)
			}
		})
	}
}

// TestCheckDNSName_RefusesNumericTopLevelLabel: names that read as IPv4
// addresses but that netip does not parse (leading zeros, five parts) are
// refused, since inet_aton-style parsers read "192.168.001.001" as an
// address and no real top-level domain is all digits (RFC 1123 §2.1,
// RFC 3696 §2).
func TestCheckDNSName_RefusesNumericTopLevelLabel(t *testing.T) {
	for _, name := range []string{"192.168.001.001", "1.2.3.4.5", "*.10.0.0.1", "example.123"} {
		if checkDNSName(name) == nil {
			t.Fatalf("checkDNSName(%q) accepts an all-digit top-level label", name)
		}
	}
}

func TestCheckIdentifiers_Accepts(t *testing.T) {
	tests := []struct {
		name string
		in   []identifier
		want []identifier
	}{
		{"one name", dnsIDs("example.com"), dnsIDs("example.com")},
		{"upper case is lowered", dnsIDs("WWW.Example.COM"), dnsIDs("www.example.com")},
		{"names are sorted", dnsIDs("b.example.com", "c.example.com", "a.example.com"), dnsIDs("a.example.com", "b.example.com", "c.example.com")},
		{"duplicates are dropped", dnsIDs("a.example.com", "a.example.com"), dnsIDs("a.example.com")},
		{"duplicates differing in case are dropped", dnsIDs("A.example.com", "a.EXAMPLE.com"), dnsIDs("a.example.com")},
		{"wildcard and its base are both kept", dnsIDs("example.com", "*.example.com"), dnsIDs("*.example.com", "example.com")},
		{"100 identifiers", dnsIDs(numberedNames(100)...), dnsIDs(sortedNames(numberedNames(100))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkIdentifiers(tt.in, 100, nil)
			if err != nil {
				t.Fatalf("checkIdentifiers: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func numberedNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.com", i)
	}
	return names
}

func sortedNames(names []string) []string {
	s := slices.Clone(names)
	slices.Sort(s)
	return s
}

func TestCheckIdentifiers_Refuses(t *testing.T) {
	tests := []struct {
		name     string
		in       []identifier
		wantType string
		// wantSubs are the identifiers of the expected subproblems, as the
		// client sent them, with their types; nil when none are expected.
		wantSubs map[identifier]string
		// wantIdentifier is the identifier, as sent, that the top-level
		// problem names.
		wantIdentifier *identifier
	}{
		{"no identifiers", nil, "malformed", nil, nil},
		{"empty list", []identifier{}, "malformed", nil, nil},
		{"too many", dnsIDs(numberedNames(101)...), "rejectedIdentifier", nil, nil},
		// The limit counts what the client sent, before duplicates go.
		{"too many counting duplicates", dnsIDs(append(numberedNames(100), "n0.example.com")...), "rejectedIdentifier", nil, nil},
		{"one bad name names it", dnsIDs("ok.example.com", "bad_name.example.com"), "rejectedIdentifier", nil,
			&identifier{Type: "dns", Value: "bad_name.example.com"}},
		{"IP literal as dns", dnsIDs("192.0.2.1"), "rejectedIdentifier", nil, &identifier{Type: "dns", Value: "192.0.2.1"}},
		{"ip type is unsupported", []identifier{{Type: "ip", Value: "192.0.2.1"}}, "unsupportedIdentifier", nil,
			&identifier{Type: "ip", Value: "192.0.2.1"}},
		{"unknown type is unsupported", []identifier{{Type: "email", Value: "A@example.com"}}, "unsupportedIdentifier", nil,
			&identifier{Type: "email", Value: "A@example.com"}},
		{"several bad give one subproblem each",
			[]identifier{
				{Type: "dns", Value: "ok.example.com"},
				{Type: "dns", Value: "-bad.example.com"},
				{Type: "ip", Value: "192.0.2.1"},
				{Type: "dns", Value: "Bücher.example"},
			},
			"rejectedIdentifier",
			map[identifier]string{
				{Type: "dns", Value: "-bad.example.com"}: "rejectedIdentifier",
				{Type: "ip", Value: "192.0.2.1"}:         "unsupportedIdentifier",
				{Type: "dns", Value: "Bücher.example"}:   "rejectedIdentifier",
			}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkIdentifiers(tt.in, 100, nil)
			if err == nil {
				t.Fatalf("checkIdentifiers accepted %v as %v", tt.in, got)
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v is not a *Problem", err)
			}
			if p.Type != problemNS+tt.wantType || p.Status != 400 {
				t.Fatalf("problem %s (%d), want %s (400)", p.Type, p.Status, tt.wantType)
			}
			if tt.wantIdentifier != nil && (p.Identifier == nil || *p.Identifier != *tt.wantIdentifier) {
				t.Fatalf("problem identifier %v, want %v", p.Identifier, tt.wantIdentifier)
			}
			if len(p.Subproblems) != len(tt.wantSubs) {
				t.Fatalf("%d subproblems, want %d: %+v", len(p.Subproblems), len(tt.wantSubs), p.Subproblems)
			}
			for _, sub := range p.Subproblems {
				if sub.Identifier == nil {
					t.Fatalf("subproblem %q names no identifier", sub.Detail)
				}
				want, ok := tt.wantSubs[*sub.Identifier]
				if !ok || sub.Type != problemNS+want {
					t.Fatalf("unexpected subproblem %s for %v", sub.Type, *sub.Identifier)
				}
			}
		})
	}
}
