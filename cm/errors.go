package cm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMessage bounds the CM message an Error carries, so that an error never
// drags a whole response body into a log line.
const maxMessage = 200

// Error is a failed exchange with CM. Final errors are answers that will not
// change on a retry (a 4xx, or a TLS setup CM refuses); the others are
// transient (5xx, 408, 429, timeouts, connection errors).
type Error struct {
	Op      string // "issue", "search" or "revoke"
	Status  int    // HTTP status; 0 when no answer came
	Message string // CM's message, at most 200 bytes
	Final   bool
	// Ambiguous is set on a transient failure of the issue POST after the
	// request may have reached CM: CM may have issued a certificate, so
	// repeating the POST may issue a second one.
	Ambiguous bool
	protocol  bool // a 2xx that breaks the contract
	config    bool // the configuration does not fit CM's
	notFound  bool // a search found nothing
	err       error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cm %s", e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.err != nil {
		fmt.Fprintf(&b, ": %v", e.err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Kind sorts a failure by what the gateway should do with it.
type Kind string

const (
	KindTransient Kind = "transient" // try again later
	KindCSR       Kind = "csr"       // CM refused the CSR (badCSR)
	KindName      Kind = "name"      // CM refused a name (rejectedIdentifier)
	KindConfig    Kind = "config"    // officer credentials, roles or trust are wrong
	KindNotFound  Kind = "notFound"  // no such certificate
	KindOther     Kind = "other"     // any other final refusal
)

// Kind classifies e. CM's refusals are not a documented vocabulary, so the
// CSR and name kinds are read from the status and the message's words
// (csrWords and nameWords in wire.go, an assumption).
func (e *Error) Kind() Kind {
	switch {
	case !e.Final:
		return KindTransient
	case e.config:
		return KindConfig
	case e.notFound:
		return KindNotFound
	case e.protocol:
		return KindOther
	case e.Status == 0:
		return KindConfig
	case e.Status == 400 && csrWords.MatchString(e.Message):
		return KindCSR
	case (e.Status == 400 || e.Status == 403 || e.Status == 422) && nameWords.MatchString(e.Message):
		return KindName
	case e.Status == 401 || e.Status == 403:
		return KindConfig
	case e.Status == 404:
		return KindNotFound
	}
	return KindOther
}

// Classify returns the Kind of err: KindOther when err is not an *Error.
func Classify(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind()
	}
	return KindOther
}

// IsFinal reports whether err is a final answer from (or about) CM.
func IsFinal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Final
}

// transportError wraps a failure that came without an HTTP answer.
// Certificate and TLS-alert failures are final: the officer certificate,
// its CA or the trusted roots are wrong, and retrying cannot fix them.
func transportError(op string, err error) *Error {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		operr *net.OpError
	)
	final := errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) ||
		// crypto/tls reports an alert sent by the peer as an OpError
		// with this Op; in TLS 1.3 a refused client certificate
		// surfaces this way on the first read.
		(errors.As(err, &operr) && operr.Op == "remote error")
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		final = false
	}
	return &Error{Op: op, Final: final, err: err}
}

// statusError builds the Error for a non-2xx answer; 4xx is final.
func statusError(op string, status int, body []byte) *Error {
	var er ErrorResponse
	_ = json.Unmarshal(body, &er) // a body that is not JSON leaves no message
	// 408 and 429 are 4xx that say "later", not "no"; a 3xx (redirects
	// are not followed) is a wrong URL.
	final := status < 500 && status != 408 && status != 429
	return &Error{Op: op, Status: status, Message: truncate(er.Text()), Final: final}
}

// truncate cuts s to maxMessage bytes on a rune boundary, with control
// characters blanked so that a message cannot forge log lines.
func truncate(s string) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
