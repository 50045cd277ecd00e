package validate

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseCAAIssueValue: the parser never panics, and what it accepts is
// on the grammar and survives being written out and parsed again.
func FuzzParseCAAIssueValue(f *testing.F) {
	for _, seed := range []string{
		"", ";", " ; ", "ca.test", "CA.Test;", "ca.test; accounturi=https://ca.test/acct/1",
		"ca.test; validationmethods=dns-01,http-01; accounturi=x", "ca.test; a = b ;", "ca.test;; a=b",
		"ca.test; a=b; a=c", "ca_test", "ca.test.", "-ca.test", "ca.test; a=b c", "ca.test; a=\x00",
		"\tca.test\t;\ta=b\t", "ca.test; =", "ca.test; a=x=y", "ca.tést; ü=ü",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		issuer, params, err := parseCAAIssueValue(value)
		if err != nil {
			if issuer != "" || params != nil {
				t.Fatalf("error %v with results %q, %v", err, issuer, params)
			}
			return
		}
		if params == nil {
			t.Fatal("nil params without an error")
		}
		if issuer != "" && (!isIssuerDomain(issuer) || issuer != strings.ToLower(issuer)) {
			t.Fatalf("issuer %q off the grammar or not lower-case", issuer)
		}
		var b strings.Builder
		b.WriteString(issuer)
		for k, v := range params {
			if !isCAATag(k) || k != strings.ToLower(k) || !isCAAParamValue(v) {
				t.Fatalf("parameter %q=%q off the grammar", k, v)
			}
			b.WriteString("; " + k + "=" + v)
		}
		issuer2, params2, err := parseCAAIssueValue(b.String())
		if err != nil || issuer2 != issuer || !maps.Equal(params, params2) {
			t.Fatalf("%q parsed to %q %v, but its rewrite %q to %q %v %v", value, issuer, params, b.String(), issuer2, params2, err)
		}
	})
}

// FuzzJoinTXT: however a TXT value is split into character-strings,
// joinTXT gives it back, and the Detail describing what was found stays
// bounded, valid UTF-8 and free of raw control characters.
func FuzzJoinTXT(f *testing.F) {
	f.Add("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", uint8(20), uint8(3))
	f.Add("", uint8(0), uint8(0))
	f.Add("a\x00b\nc\"d\\e\xff", uint8(1), uint8(255))
	f.Add(strings.Repeat("x", 600), uint8(255), uint8(2))
	f.Fuzz(func(t *testing.T, value string, chunk, copies uint8) {
		size := max(int(chunk), 1)
		var parts []string
		for rest := value; rest != ""; {
			n := min(size, len(rest))
			parts = append(parts, rest[:n])
			rest = rest[n:]
		}
		if got := joinTXT(parts); got != value {
			t.Fatalf("joinTXT(%q) = %q, want %q", parts, got, value)
		}
		found := make([]string, int(copies)%12+1)
		for i := range found {
			found[i] = joinTXT(parts)
		}
		desc := describeFound(found)
		if len(desc) > 1200 {
			t.Fatalf("describeFound is %d bytes", len(desc))
		}
		if !utf8.ValidString(desc) {
			t.Fatalf("describeFound is not UTF-8: %q", desc)
		}
		for _, r := range desc {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("describeFound has a raw control character: %q", desc)
			}
		}
	})
}
