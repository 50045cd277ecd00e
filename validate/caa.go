package validate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// caaCritical is the Issuer Critical flag (RFC 8659 §4.1): the bit with
// significance 128.
const caaCritical = 128

// caaWSP is the whitespace the CAA value grammar allows around its parts.
const caaWSP = " \t"

// CAA checks whether the CAA records of name (RFC 8659) let this CA, named
// by Config.CAAIdentities, issue for it. name is a DNS name without the
// "*." of a wildcard, which the caller strips and says with wildcard.
// accountURI and method ("http-01", "dns-01", "tls-alpn-01") are checked
// against the accounturi and validationmethods parameters (RFC 8657).
//
// The relevant record set is the first non-empty CAA answer found going up
// from name to its top-level domain; the resolver's CNAMEs are followed.
// For a wildcard the issuewild records of that set apply if it has any,
// else its issue records; a set with neither allows everyone. One record
// naming this CA with matching parameters is enough; `issue ";"` names
// nobody.
//
// It returns nil when issuance may proceed, always when CAAIdentities is
// empty and for IP addresses, which CAA does not cover. A refusal
// is KindCAA, naming the set that applied. A failed lookup (SERVFAIL,
// timeout; with DNSSECRequired an answer without the AD bit) is KindDNS:
// it never counts as permission. A malformed name, a bug in the caller,
// gives a plain error.
func (v *Validator) CAA(ctx context.Context, name string, wildcard bool, accountURI, method string) error {
	if len(v.caaIDs) == 0 {
		return nil
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return nil
	}
	if err := checkName(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	set, at, err := v.relevantCAA(ctx, name)
	if err != nil {
		return err
	}
	return v.checkCAASet(strings.TrimSuffix(name, "."), at, set, wildcard, accountURI, method)
}

// relevantCAA climbs from name towards the root and returns the first
// non-empty CAA RRset and the name it was asked for (RFC 8659 §3). The root
// itself is not asked.
func (v *Validator) relevantCAA(ctx context.Context, name string) ([]*dns.CAA, string, error) {
	labels := dns.SplitDomainName(name)
	for i := range labels {
		x := strings.Join(labels[i:], ".")
		rrs, err := v.secureLookup(ctx, x, dns.TypeCAA)
		if err != nil && !isNXDOMAIN(err) {
			var de *dnsError
			if errors.As(err, &de) {
				return nil, "", newError(KindDNS, err, "CAA lookup failed: %s", de.detail())
			}
			return nil, "", newError(KindDNS, err, "CAA lookup failed for %s", x)
		}
		var set []*dns.CAA
		for _, rr := range rrs {
			if caa, ok := rr.(*dns.CAA); ok {
				set = append(set, caa)
			}
		}
		if len(set) > 0 {
			return set, x, nil
		}
	}
	return nil, "", nil
}

// checkCAASet applies the relevant set found at `at` to name.
func (v *Validator) checkCAASet(name, at string, set []*dns.CAA, wildcard bool, accountURI, method string) error {
	var issue, issuewild []*dns.CAA
	for _, rr := range set {
		switch strings.ToLower(rr.Tag) {
		case "issue":
			issue = append(issue, rr)
		case "issuewild":
			issuewild = append(issuewild, rr)
		case "iodef", "issuemail":
			// Known, and irrelevant to TLS server certificates.
		default:
			if rr.Flag&caaCritical != 0 {
				return newError(KindCAA, nil, "CAA record for %s (at %s) has an unknown critical property, which forbids issuance: %s",
					name, at, describeCAA(rr))
			}
		}
	}
	applicable := issue
	if wildcard && len(issuewild) > 0 {
		applicable = issuewild
	}
	if len(applicable) == 0 {
		return nil
	}
	for _, rr := range applicable {
		if v.caaPermits(rr.Value, accountURI, method) {
			return nil
		}
	}
	shown := make([]string, 0, maxShownValues)
	for i, rr := range applicable {
		if i == maxShownValues {
			shown = append(shown, "...")
			break
		}
		shown = append(shown, describeCAA(rr))
	}
	return newError(KindCAA, nil, "CAA records for %s (at %s) do not permit issuance by this CA for this account and method: %s",
		name, at, strings.Join(shown, ", "))
}

// caaPermits reports whether one issue or issuewild value names this CA
// with parameters that allow accountURI and method. A malformed value
// permits nothing.
func (v *Validator) caaPermits(value, accountURI, method string) bool {
	issuer, params, err := parseCAAIssueValue(value)
	if err != nil || issuer == "" || !slices.Contains(v.caaIDs, issuer) {
		return false
	}
	if uri, ok := params["accounturi"]; ok && (accountURI == "" || uri != accountURI) {
		return false
	}
	if methods, ok := params["validationmethods"]; ok && (method == "" || !slices.Contains(strings.Split(methods, ","), method)) {
		return false
	}
	return true
}

// describeCAA shows a record in zone-file form for a Detail; the tag is
// quoted only when it is off the grammar, since it comes from the wire.
func describeCAA(rr *dns.CAA) string {
	tag := rr.Tag
	if !isCAATag(tag) || len(tag) > 16 {
		tag = truncate(tag, 16)
	}
	return fmt.Sprintf("%d %s %s", rr.Flag, tag, truncate(rr.Value, 100))
}

// parseCAAIssueValue parses the value of an issue or issuewild property
// (RFC 8659 §4.2):
//
//	issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
//	parameters  = (parameter *WSP ";" *WSP parameters) / parameter
//	parameter   = tag *WSP "=" *WSP value
//
// issuer is lower-cased and "" when the value names no issuer. Parameter
// tags are lower-cased so that "AccountURI" cannot slip past the check; a
// repeated tag is an error, as is anything else off the grammar, except
// that a trailing ";" is tolerated. params is never nil without an error.
func parseCAAIssueValue(value string) (issuer string, params map[string]string, err error) {
	head, rest, hasParams := strings.Cut(value, ";")
	issuer = strings.ToLower(strings.Trim(head, caaWSP))
	if issuer != "" && !isIssuerDomain(issuer) {
		return "", nil, fmt.Errorf("invalid issuer domain name %q", issuer)
	}
	params = map[string]string{}
	if !hasParams {
		return issuer, params, nil
	}
	parts := strings.Split(rest, ";")
	for i, p := range parts {
		p = strings.Trim(p, caaWSP)
		if p == "" {
			if i == len(parts)-1 {
				break
			}
			return "", nil, errors.New("empty parameter")
		}
		tag, val, ok := strings.Cut(p, "=")
		if !ok {
			return "", nil, fmt.Errorf("parameter %q has no '='", p)
		}
		tag = strings.ToLower(strings.Trim(tag, caaWSP))
		val = strings.Trim(val, caaWSP)
		if !isCAATag(tag) {
			return "", nil, fmt.Errorf("invalid parameter tag %q", tag)
		}
		if !isCAAParamValue(val) {
			return "", nil, fmt.Errorf("invalid value for parameter %s", tag)
		}
		if _, dup := params[tag]; dup {
			return "", nil, fmt.Errorf("parameter %s repeated", tag)
		}
		params[tag] = val
	}
	return issuer, params, nil
}

// isIssuerDomain reports whether s is label *("." label) with at most 253
// bytes and 63 a label (RFC 8659 §4.2, RFC 1035).
func isIssuerDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) > 63 || !isCAATag(label) {
			return false
		}
	}
	return true
}

// isCAATag reports whether s is (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)),
// the grammar of both a parameter tag and a domain label.
func isCAATag(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isCAAParamValue reports whether s is *(%x21-3A / %x3C-7E): printable
// ASCII without space or ';'.
func isCAAParamValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' {
			return false
		}
	}
	return true
}
