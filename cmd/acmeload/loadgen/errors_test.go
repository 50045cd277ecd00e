package loadgen

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

func TestClassify(t *testing.T) {
	const name = "w1-7.load.example.com"
	tests := []struct {
		name        string
		err         error
		wantKind    string
		wantExample string
	}{
		{"problem counted by type",
			fmt.Errorf("solving: %w", acme.Problem{Type: "urn:ietf:params:acme:error:dns", Status: 400, Detail: "no TXT at _acme-challenge." + name}),
			"urn:ietf:params:acme:error:dns",
			"solving: HTTP 400 urn:ietf:params:acme:error:dns - no TXT at _acme-challenge.<name>"},
		{"problem counted by step and type",
			&stepError{stepChallenge, fmt.Errorf("attempt 1: https://ca.test/acme/challenge/Zx9/dns-01: %w", acme.Problem{Type: acme.ProblemTypeRateLimited, Status: 429, Detail: "too many validations waiting"})},
			"challenge: " + acme.ProblemTypeRateLimited,
			"challenge: attempt 1: https://ca.test/acme/challenge/Zx9/dns-01: HTTP 429 urn:ietf:params:acme:error:rateLimited - too many validations waiting"},
		{"step error by message, which starts with the step",
			&stepError{stepFinalize, errors.New(`Post "https://ca.test:8443/acme/finalize/Zx9": EOF`)},
			`finalize: Post "https://ca.test:8443/…": EOF`,
			`finalize: Post "https://ca.test:8443/acme/finalize/Zx9": EOF`},
		{"other error by message without URL paths",
			errors.New(`Post "https://ca.test:8443/acme/order/Zx9": EOF`),
			`Post "https://ca.test:8443/…": EOF`,
			`Post "https://ca.test:8443/acme/order/Zx9": EOF`},
		{"long message truncated",
			errors.New(strings.Repeat("é", 400)),
			strings.Repeat("é", maxErrorText/2) + "…",
			strings.Repeat("é", maxErrorText/2) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, example := classify(tc.err, name)
			if kind != tc.wantKind {
				t.Errorf("kind %q, want %q", kind, tc.wantKind)
			}
			if example != tc.wantExample {
				t.Errorf("example %q, want %q", example, tc.wantExample)
			}
		})
	}
}
