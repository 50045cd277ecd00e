package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

const problemNS = "urn:ietf:params:acme:error:"

// Problem is an RFC 7807 problem document with ACME's error types (RFC 8555 §6.7).
type Problem struct {
	Type        string      `json:"type"`
	Detail      string      `json:"detail,omitempty"`
	Status      int         `json:"status,omitempty"`
	Identifier  *identifier `json:"identifier,omitempty"`
	Subproblems []*Problem  `json:"subproblems,omitempty"`
	// Algorithms lists the accepted JWS algorithms of a badSignatureAlgorithm problem.
	Algorithms []string `json:"algorithms,omitempty"`

	// location, when set, is sent as the Location header (key rollover conflict).
	location string
	// retryAfter, when positive, is sent as Retry-After in seconds.
	retryAfter int
	// cause is logged, never shown.
	cause error
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

func (p *Problem) Unwrap() error { return p.cause }

func newProblem(typ string, status int, format string, args ...any) *Problem {
	return &Problem{Type: problemNS + typ, Status: status, Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusBadRequest, format, args...)
}

func unauthorized(format string, args ...any) *Problem {
	return newProblem("unauthorized", http.StatusForbidden, format, args...)
}

func badNonce(format string, args ...any) *Problem {
	return newProblem("badNonce", http.StatusBadRequest, format, args...)
}

func badCSR(format string, args ...any) *Problem {
	return newProblem("badCSR", http.StatusBadRequest, format, args...)
}

func notFound(what string) *Problem {
	return newProblem("malformed", http.StatusNotFound, "%s not found", what)
}

// internalError hides err from the client; it is logged with the request.
func internalError(err error) *Problem {
	p := newProblem("serverInternal", http.StatusInternalServerError, "internal error")
	if errors.Is(err, storage.ErrUnavailable) {
		p.Status = http.StatusServiceUnavailable
		p.Detail = "storage temporarily unavailable"
		p.retryAfter = 5
	}
	p.cause = err
	return p
}

// asProblem turns any error into the problem the client sees.
func asProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return internalError(err)
}

// validationProblem maps a validate error kind to its ACME problem type.
func validationProblem(err error) *Problem {
	var ve *validate.Error
	if !errors.As(err, &ve) {
		return newProblem("serverInternal", http.StatusInternalServerError, "validation failed")
	}
	typ := "unauthorized"
	switch ve.Kind {
	case validate.KindConnection:
		typ = "connection"
	case validate.KindDNS:
		typ = "dns"
	case validate.KindIncorrectResponse:
		typ = "incorrectResponse"
	case validate.KindCAA:
		typ = "caa"
	case validate.KindTLS:
		typ = "tls"
	}
	return newProblem(typ, http.StatusBadRequest, "%s", ve.Detail)
}

// problemJSON encodes p for storage in a record.
func problemJSON(p *Problem) []byte {
	b, _ := json.Marshal(p)
	return b
}

// storedProblem decodes a problem kept in a record; nil when there is none.
func storedProblem(b []byte) *Problem {
	if len(b) == 0 {
		return nil
	}
	var p Problem
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &p
}
