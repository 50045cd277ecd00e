package validate

import "fmt"

// Kind says what failed; the server maps it to an ACME problem type
// (RFC 8555 §6.7): connection, dns, unauthorized, incorrectResponse, caa, tls.
type Kind string

// The kinds of validation failure.
const (
	// KindConnection: the server could not connect to or read from the
	// client's host (refused, timeout, bad redirect, denied address).
	KindConnection Kind = "connection"
	// KindDNS: a DNS lookup failed (NXDOMAIN, SERVFAIL, timeout, CNAME loop,
	// an answer not authenticated when DNSSEC is required) or returned no
	// usable address. A CAA lookup that fails is KindDNS, never permission.
	KindDNS Kind = "dns"
	// KindUnauthorized: the lookup, fetch or handshake worked but did not
	// prove control (no matching TXT record, HTTP status other than 200, a
	// tls-alpn-01 certificate with the wrong SAN or acmeIdentifier).
	KindUnauthorized Kind = "unauthorized"
	// KindIncorrectResponse: the http-01 response body was not the key
	// authorization (wrong or oversized body).
	KindIncorrectResponse Kind = "incorrectResponse"
	// KindCAA: the relevant CAA records (RFC 8659) do not let this CA
	// issue for the name, account or validation method.
	KindCAA Kind = "caa"
	// KindTLS: the tls-alpn-01 handshake failed at the TLS level (an alert,
	// a protocol error) or did not negotiate acme-tls/1.
	KindTLS Kind = "tls"
)

// Error is returned by every validation failure. Detail is safe to show to
// the ACME client: it says which name or address was tried and what failed,
// and never names the configured resolvers. Err is the underlying cause, for
// logs and errors.Is/As; it may be nil.
type Error struct {
	Kind   Kind
	Detail string
	Err    error
}

// Error implements error; unlike Detail it includes the underlying cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return "validate: " + string(e.Kind) + ": " + e.Detail
	}
	return "validate: " + string(e.Kind) + ": " + e.Detail + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func newError(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...), Err: err}
}

// truncate shortens s to at most n bytes for a Detail, quoting it so that
// control characters from untrusted input cannot garble the message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:n])
}
