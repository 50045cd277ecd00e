package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

const (
	// maxShownValues and maxShownLen bound how much of the TXT records found
	// goes into a Detail.
	maxShownValues = 3
	maxShownLen    = 64
)

// DNS01 looks up the TXT records at _acme-challenge.<domain> (domain without
// the "*." of a wildcard: the caller strips it) through the configured
// resolvers, following CNAMEs, and accepts when any record, its strings
// concatenated, equals base64url(sha256(keyAuth)) without padding
// (RFC 8555 §8.4).
//
// It returns nil on success and an *Error for every validation failure:
// KindDNS when the lookup fails (NXDOMAIN, SERVFAIL, timeout), and
// KindUnauthorized when it works but no record matches. With
// DNSSECRequired an answer without the AD bit is KindDNS. A malformed
// domain, a bug in the caller, gives a plain error.
func (v *Validator) DNS01(ctx context.Context, domain, keyAuth string) error {
	if err := checkName(domain); err != nil {
		return err
	}
	if keyAuth == "" {
		return errors.New("validate: empty key authorization")
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	sum := sha256.Sum256([]byte(keyAuth))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	name := "_acme-challenge." + strings.TrimSuffix(domain, ".")

	rrs, err := v.secureLookup(ctx, name, dns.TypeTXT)
	if err != nil {
		var de *dnsError
		if errors.As(err, &de) {
			return newError(KindDNS, err, "%s", de.detail())
		}
		return newError(KindDNS, err, "DNS problem: looking up TXT for %s failed", name)
	}

	var found []string
	for _, rr := range rrs {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		value := joinTXT(txt.Txt)
		if value == want {
			return nil
		}
		found = append(found, value)
	}
	if len(found) == 0 {
		return newError(KindUnauthorized, nil, "no TXT record found at %s", name)
	}
	return newError(KindUnauthorized, nil, "no TXT record matched at %s: %s", name, describeFound(found))
}

// joinTXT is the value of a TXT record: its character-strings concatenated.
// A record longer than 255 bytes comes as several strings; RFC 8555 does
// not split the digest, but some DNS providers do.
func joinTXT(parts []string) string {
	return strings.Join(parts, "")
}

// describeFound lists a few of the values found, each truncated.
func describeFound(found []string) string {
	shown := make([]string, 0, maxShownValues)
	for i, s := range found {
		if i == maxShownValues {
			break
		}
		shown = append(shown, truncate(s, maxShownLen))
	}
	desc := fmt.Sprintf("found %d: %s", len(found), strings.Join(shown, ", "))
	if len(found) > maxShownValues {
		desc += ", ..."
	}
	return desc
}
