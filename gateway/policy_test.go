package gateway

import (
	"encoding/json"
	"testing"
)

func TestNameUnder_WholeLabels(t *testing.T) {
	tests := []struct {
		name, entry string
		want        bool
	}{
		{"example.com", "example.com", true},
		{"cm.example.com", "example.com", true},
		{"a.b.example.com", "example.com", true},
		{"*.example.com", "example.com", true},
		{"badexample.com", "example.com", false},
		{"nexusgroup.se", "example.com", false},
		{"example.com.evil.net", "example.com", false},
		{"com", "example.com", false},
		{"CM.Example.COM", "example.com", true},
		{"cm.example.com.", "example.com", true},
		{"cm.example.com", "*.example.com", true},
		{"*.example.com", "*.example.com", true},
		{"example.com", "*.example.com", false},
		{"badexample.com", "*.example.com", false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"shop.xn--bcher-kva.example", "xn--bcher-kva.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name+"_under_"+tt.entry, func(t *testing.T) {
			if got := nameUnder(tt.name, tt.entry); got != tt.want {
				t.Fatalf("nameUnder(%q, %q) = %v, want %v", tt.name, tt.entry, got, tt.want)
			}
		})
	}
}

func TestNormalizeDomainEntry(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "example.com", want: "example.com"},
		{in: "Example.COM.", want: "example.com"},
		{in: " example.com ", want: "example.com"},
		{in: "*.Example.com", want: "*.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "", bad: true},
		{in: "*.", bad: true},
		{in: "exa mple.com", bad: true},
		{in: "under_score.com", bad: true},
		{in: "a..b", bad: true},
		{in: "-lead.example", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeDomainEntry(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("NormalizeDomainEntry(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeDomainEntry(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNamePolicy_Refusal(t *testing.T) {
	reg, _ := NormalizeDomainList([]string{"example.com", "bücher.example"})
	tests := []struct {
		desc   string
		policy namePolicy
		name   string
		allow  bool
	}{
		{"registration allows equal", namePolicy{allowWildcards: true, registration: reg}, "example.com", true},
		{"registration allows below", namePolicy{allowWildcards: true, registration: reg}, "cm.example.com", true},
		{"registration allows wildcard below", namePolicy{allowWildcards: true, registration: reg}, "*.example.com", true},
		{"registration allows IDN as A-label", namePolicy{allowWildcards: true, registration: reg}, "www.xn--bcher-kva.example", true},
		{"registration refuses boundary", namePolicy{allowWildcards: true, registration: reg}, "badexample.com", false},
		{"registration refuses other", namePolicy{allowWildcards: true, registration: reg}, "nexusgroup.se", false},
		{"empty registration list allows all", namePolicy{allowWildcards: true}, "nexusgroup.se", true},
		{"wildcards switched off", namePolicy{allowWildcards: false}, "*.example.com", false},
		{"wildcard covering a denied name", namePolicy{allowWildcards: true, deny: []string{"secret.example.com"}}, "*.example.com", false},
		{"wildcard not covering a deeper denied name", namePolicy{allowWildcards: true, deny: []string{"x.secret.example.com"}}, "*.example.com", true},
		{"deny wins over allow", namePolicy{allowWildcards: true, allow: []string{"example.com"}, deny: []string{"secret.example.com"}}, "x.secret.example.com", false},
		{"allow list refuses outside", namePolicy{allowWildcards: true, allow: []string{"example.com"}}, "example.net", false},
		{"allow list allows inside", namePolicy{allowWildcards: true, allow: []string{"example.com"}}, "a.example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			why := tt.policy.refusal(identifier{Type: "dns", Value: tt.name})
			if (why == "") != tt.allow {
				t.Fatalf("refusal(%q) = %q, want allowed=%v", tt.name, why, tt.allow)
			}
		})
	}
}

func TestNamePolicy_OneSubproblemPerRefusedIdentifier(t *testing.T) {
	p := namePolicy{allowWildcards: true, registration: []string{"example.com"}}
	err := p.check([]identifier{
		{Type: "dns", Value: "a.example.com"},
		{Type: "dns", Value: "badexample.com"},
		{Type: "dns", Value: "nexusgroup.se"},
	})
	prob := asProblem(err)
	if prob.Type != problemNS+"rejectedIdentifier" || len(prob.Subproblems) != 2 {
		b, _ := json.Marshal(prob)
		t.Fatalf("problem %s", b)
	}
	for i, want := range []string{"badexample.com", "nexusgroup.se"} {
		if sub := prob.Subproblems[i]; sub.Identifier == nil || sub.Identifier.Value != want || sub.Type != problemNS+"rejectedIdentifier" {
			t.Fatalf("subproblem %d: %+v", i, sub)
		}
	}
}
