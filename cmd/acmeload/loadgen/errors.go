package loadgen

import (
	"errors"
	"regexp"
	"strings"

	"github.com/mholt/acmez/v3/acme"
)

// maxErrorText bounds the text of an error kept in a report: a server may
// put a whole page in a message.
const maxErrorText = 300

// urlPath matches the part of a URL after its host, which holds the
// order, authorization or challenge ID in messages such as "POST
// https://ca/acme/order/abc: EOF".
var urlPath = regexp.MustCompile(`(https?://[^/\s"]+)/[^\s"]*`)

// The steps of an issuance, as a report names the one that failed.
const (
	stepNewOrder      = "new order"
	stepAuthorization = "authorization" // fetching or polling it
	stepChallenge     = "challenge"     // the server refused to start it
	stepValidation    = "validation"    // the server found the response wrong
	stepFinalize      = "finalize"
	stepCertificate   = "certificate"
)

// stepError is an issuance's error and the step it stopped at, so that
// a rateLimited new order, say, counts apart from a rateLimited challenge.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }

func (e *stepError) Unwrap() error { return e.err }

// classify names the kind of err, for counting, and gives its message as
// an example. Problems are counted by step and type (a type such as
// urn:ietf:params:acme:error:rateLimited is what the operator acts on);
// other errors by their message, which starts with the step, with what
// differs between issuances, the name and URL paths, taken out.
func classify(err error, name string) (kind, example string) {
	example = truncate(strings.ReplaceAll(err.Error(), name, "<name>"))
	var p acme.Problem
	if errors.As(err, &p) && p.Type != "" {
		kind = p.Type
		var s *stepError
		if errors.As(err, &s) {
			kind = s.step + ": " + kind
		}
		return truncate(kind), example
	}
	return truncate(urlPath.ReplaceAllString(example, "$1/…")), example
}

func truncate(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorText], "") + "…"
}
