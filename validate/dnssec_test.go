package validate

import (
	"context"
	"testing"
)

func TestDNSSECRequired(t *testing.T) {
	const (
		challenge = "_acme-challenge.example.test."
		target    = "target.other.test."
	)
	good := digest(testKeyAuth)
	tests := []struct {
		name     string
		records  []string
		ad       bool     // the resolver sets AD
		noAD     []string // names answered without AD even so
		required bool
		check    func(v *Validator) error
		kind     Kind
		details  []string
	}{
		{
			name: "DNS01Authenticated", records: []string{txt(challenge, good)}, ad: true, required: true,
			check: dns01Check,
		},
		{
			name: "DNS01NotAuthenticated", records: []string{txt(challenge, good)}, required: true,
			check: dns01Check, kind: KindDNS, details: []string{"answer not authenticated (DNSSEC)", "TXT", "_acme-challenge.example.test"},
		},
		{
			name: "DNS01CNAMETargetNotAuthenticated", ad: true, noAD: []string{target}, required: true,
			records: []string{challenge + " 60 IN CNAME " + target, txt(target, good)},
			check:   dns01Check, kind: KindDNS, details: []string{"answer not authenticated (DNSSEC)"},
		},
		{
			name: "DNS01NXDOMAINNotAuthenticated", required: true,
			check: dns01Check, kind: KindDNS, details: []string{"answer not authenticated (DNSSEC)"},
		},
		{name: "DNS01NotRequired", records: []string{txt(challenge, good)}, check: dns01Check},
		{
			name: "CAAAuthenticated", records: []string{caa("example.test.", 0, "issue", "ca.test")}, ad: true, required: true,
			check: caaCheck,
		},
		{
			name: "CAANotAuthenticated", records: []string{caa("example.test.", 0, "issue", "ca.test")}, required: true,
			check: caaCheck, kind: KindDNS, details: []string{"CAA lookup failed", "answer not authenticated (DNSSEC)", "www.example.test"},
		},
		{
			// A forged empty answer on the way up must not hide a forbidding
			// record further up.
			name: "CAAClimbStepNotAuthenticated", ad: true, noAD: []string{"www.example.test."}, required: true,
			records: []string{"www.example.test. 60 IN A 127.0.0.1", caa("example.test.", 0, "issue", "other.ca")},
			check:   caaCheck, kind: KindDNS, details: []string{"CAA lookup failed", "not authenticated", "www.example.test"},
		},
		{name: "CAANotRequired", records: []string{caa("example.test.", 0, "issue", "ca.test")}, check: caaCheck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestDNS(t, tc.records...)
			srv.setAD(tc.ad)
			for _, n := range tc.noAD {
				srv.setBehaviour(n, behaviour{noAD: true})
			}
			v := newTestValidator(t, Config{Resolvers: []string{srv.addr}, DNSSECRequired: tc.required, CAAIdentities: []string{"ca.test"}})
			wantError(t, tc.check(v), tc.kind, tc.details...)

			q := srv.lastQuery()
			opt := q.IsEdns0()
			if opt == nil {
				t.Fatal("no EDNS0 OPT record")
			}
			if opt.Do() != tc.required || q.AuthenticatedData != tc.required {
				t.Errorf("query DO=%v AD=%v, want both %v", opt.Do(), q.AuthenticatedData, tc.required)
			}
			if q.CheckingDisabled {
				t.Error("query has CD set: the resolver would not validate")
			}
		})
	}
}

func dns01Check(v *Validator) error {
	return v.DNS01(context.Background(), "example.test", testKeyAuth)
}

func caaCheck(v *Validator) error {
	return v.CAA(context.Background(), "www.example.test", false, testAccount, "dns-01")
}
