package gateway

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

type identifier = storage.Identifier

// checkIdentifiers normalizes and checks an order's identifiers. It answers
// one subproblem per refused identifier, so that a client learns all of
// them at once.
// ip identifiers (RFC 8738) are supported only when allowIP lists networks,
// and accepted only inside them.
func checkIdentifiers(ids []identifier, maxIdentifiers int, allowIP []netip.Prefix) ([]identifier, error) {
	if len(ids) == 0 {
		return nil, malformed("order has no identifiers")
	}
	if len(ids) > maxIdentifiers {
		return nil, problem(ProblemRejectedIdentifier, "at most %d identifiers per order", maxIdentifiers)
	}
	var out []identifier
	var subs []*Problem
	for _, id := range ids {
		sent := id // subproblems name the identifier as the client sent it
		id.Value = strings.ToLower(id.Value)
		var err error
		switch {
		case id.Type == "dns":
			err = checkDNSName(id.Value)
		case id.Type == "ip" && len(allowIP) > 0:
			id.Value, err = checkIP(id.Value, allowIP)
		default:
			sub := problem(ProblemUnsupportedIdentifier, "identifier type %q is not supported", id.Type)
			sub.Identifier = &sent
			subs = append(subs, sub)
			continue
		}
		if err != nil {
			sub := problem(ProblemRejectedIdentifier, "%s: %v", sent.Value, err)
			sub.Identifier = &sent
			subs = append(subs, sub)
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(subs) == 1 {
		return nil, subs[0]
	}
	if len(subs) > 1 {
		p := problem(ProblemRejectedIdentifier, "%d identifiers were refused", len(subs))
		p.Subproblems = subs
		return nil, p
	}
	slices.SortFunc(out, func(a, b identifier) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out, nil
}

// checkIP accepts an address inside allow and returns it in its canonical
// text form (RFC 8738 §3: RFC 5952 for IPv6).
func checkIP(value string, allow []netip.Prefix) (string, error) {
	addr, err := netip.ParseAddr(value)
	if err != nil || addr.Zone() != "" {
		return "", fmt.Errorf("not an IP address")
	}
	addr = addr.Unmap()
	for _, p := range allow {
		if p.Contains(addr) {
			return addr.String(), nil
		}
	}
	return "", fmt.Errorf("address is outside the networks allowed for ip identifiers")
}

// orderNames splits an order's identifiers into DNS names and addresses.
func orderNames(ids []identifier) (names []string, ips []netip.Addr) {
	for _, id := range ids {
		switch id.Type {
		case "dns":
			names = append(names, id.Value)
		case "ip":
			if a, err := netip.ParseAddr(id.Value); err == nil {
				ips = append(ips, a)
			}
		}
	}
	return names, ips
}

// checkDNSName accepts a lower-case, fully qualified host name in A-label
// form, optionally with a leading "*." wildcard label.
func checkDNSName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("name length must be 1 to 253")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("an IP address is not a dns identifier")
	}
	base, wildcard := strings.CutPrefix(name, "*.")
	labels := strings.Split(base, ".")
	if len(labels) < 2 {
		return fmt.Errorf("name must have at least two labels")
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	if allDigits(labels[len(labels)-1]) {
		// RFC 1123 §2.1: a top-level label is never all-numeric, and
		// names like 10.0.0.001 read as addresses to some parsers.
		return fmt.Errorf("the last label must not be all digits")
	}
	if wildcard && strings.Contains(base, "*") {
		return fmt.Errorf("only the leftmost label may be a wildcard")
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return fmt.Errorf("label length must be 1 to 63")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q has a character outside a-z, 0-9 and hyphen", l)
		}
	}
	return nil
}

// splitWildcard returns the name an authorization is for, and whether the
// identifier was a wildcard (RFC 8555 §7.1.3).
func splitWildcard(value string) (string, bool) {
	base, ok := strings.CutPrefix(value, "*.")
	return base, ok
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
