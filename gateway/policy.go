package gateway

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// domainProfile turns an operator's domain entry into its A-label form.
var domainProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule())

// NormalizeDomainEntry returns a domain list entry (allow, deny, or a
// registration's allowed domains) in the form names are compared in:
// lower-case A-labels without a trailing dot. A leading "*." is kept.
func NormalizeDomainEntry(entry string) (string, error) {
	e := strings.TrimSuffix(strings.TrimSpace(entry), ".")
	base, wildcard := strings.CutPrefix(e, "*.")
	if base == "" {
		return "", fmt.Errorf("domain %q is empty", entry)
	}
	ascii, err := domainProfile.ToASCII(base)
	if err != nil {
		return "", fmt.Errorf("domain %q: %v", entry, err)
	}
	ascii = strings.ToLower(ascii)
	for _, l := range strings.Split(ascii, ".") {
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("domain %q: %v", entry, err)
		}
	}
	if wildcard {
		return "*." + ascii, nil
	}
	return ascii, nil
}

// NormalizeDomainList normalizes every entry of a list.
func NormalizeDomainList(entries []string) ([]string, error) {
	out := make([]string, 0, len(entries))
	var errs []error
	for _, e := range entries {
		n, err := NormalizeDomainEntry(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, n)
	}
	return out, errors.Join(errs...)
}

// nameUnder reports whether name (an order's identifier: lower case,
// A-labels, possibly "*.") equals entry or lies below it, on whole labels.
// An entry "*.example.com" covers the names below example.com, not
// example.com itself; "example.com" covers both.
func nameUnder(name, entry string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if base, ok := strings.CutPrefix(entry, "*."); ok {
		return strings.HasSuffix(name, "."+base)
	}
	return name == entry || strings.HasSuffix(name, "."+entry)
}

// wildcardCoversAny reports whether a wildcard name covers a name of list:
// "*.example.com" covers "secret.example.com", one label below its base.
func wildcardCoversAny(name string, list []string) bool {
	base, ok := strings.CutPrefix(name, "*.")
	if !ok {
		return false
	}
	for _, e := range list {
		if _, parent, found := strings.Cut(e, "."); found && !strings.HasPrefix(e, "*.") && parent == base {
			return true
		}
	}
	return false
}

// nameInList reports whether name is under any entry of list.
func nameInList(name string, list []string) bool {
	for _, e := range list {
		if nameUnder(name, e) {
			return true
		}
	}
	return false
}

// namePolicy is who may have which names: the server's allow and deny
// lists and wildcard switch, and a registration's allowed domains.
type namePolicy struct {
	allow, deny    []string
	allowWildcards bool
	// registration holds a registration's allowed domains; nil: any.
	registration []string
}

// refusal says why an identifier is refused, or "" when it is allowed.
// Addresses are held to allow_ip when parsed; a registration limited to
// domains allows none.
func (p namePolicy) refusal(id identifier) string {
	if id.Type == "ip" {
		if len(p.registration) > 0 {
			return "addresses are not in the domains allowed for this account's registration"
		}
		return ""
	}
	name := id.Value
	switch {
	case strings.HasPrefix(name, "*.") && !p.allowWildcards:
		return "wildcard names are not allowed"
	case nameInList(name, p.deny) || wildcardCoversAny(name, p.deny):
		return "name is denied by policy"
	case len(p.allow) > 0 && !nameInList(name, p.allow):
		return "name is not in the allowed domains"
	case len(p.registration) > 0 && !nameInList(name, p.registration):
		return "name is not in the domains allowed for this account's registration"
	}
	return ""
}

// check refuses the identifiers the policy does not allow, with one
// subproblem per refused identifier.
func (p namePolicy) check(ids []identifier) error {
	var subs []*Problem
	for _, id := range ids {
		if why := p.refusal(id); why != "" {
			sub := problem(ProblemRejectedIdentifier, "%s: %s", id.Value, why)
			sub.Identifier = &identifier{Type: id.Type, Value: id.Value}
			subs = append(subs, sub)
		}
	}
	switch len(subs) {
	case 0:
		return nil
	case 1:
		return subs[0]
	}
	p0 := problem(ProblemRejectedIdentifier, "%d identifiers were refused", len(subs))
	p0.Subproblems = subs
	return p0
}
