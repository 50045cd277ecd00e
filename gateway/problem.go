package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/validate"
)

const problemNS = "urn:ietf:params:acme:error:"

// ProblemType is an ACME error type (RFC 8555 §6.7, and the extensions the
// gateway speaks), without its namespace. Each carries the HTTP status
// its problem documents have unless a handler says otherwise.
type ProblemType string

// The problem types, with their statuses in problemStatus.
const (
	ProblemAccountDoesNotExist     ProblemType = "accountDoesNotExist"
	ProblemAlreadyReplaced         ProblemType = "alreadyReplaced"
	ProblemAlreadyRevoked          ProblemType = "alreadyRevoked"
	ProblemBadCSR                  ProblemType = "badCSR"
	ProblemBadNonce                ProblemType = "badNonce"
	ProblemBadPublicKey            ProblemType = "badPublicKey"
	ProblemBadRevocationReason     ProblemType = "badRevocationReason"
	ProblemBadSignatureAlgorithm   ProblemType = "badSignatureAlgorithm"
	ProblemCAA                     ProblemType = "caa"
	ProblemCompound                ProblemType = "compound"
	ProblemConnection              ProblemType = "connection"
	ProblemDNS                     ProblemType = "dns"
	ProblemExternalAccountRequired ProblemType = "externalAccountRequired"
	ProblemIncorrectResponse       ProblemType = "incorrectResponse"
	ProblemInvalidContact          ProblemType = "invalidContact"
	ProblemInvalidProfile          ProblemType = "invalidProfile" // draft-ietf-acme-profiles
	ProblemMalformed               ProblemType = "malformed"
	ProblemOrderNotReady           ProblemType = "orderNotReady"
	ProblemRateLimited             ProblemType = "rateLimited"
	ProblemRejectedIdentifier      ProblemType = "rejectedIdentifier"
	ProblemServerInternal          ProblemType = "serverInternal"
	ProblemTLS                     ProblemType = "tls"
	ProblemUnauthorized            ProblemType = "unauthorized"
	ProblemUnsupportedContact      ProblemType = "unsupportedContact"
	ProblemUnsupportedIdentifier   ProblemType = "unsupportedIdentifier"
	ProblemUserActionRequired      ProblemType = "userActionRequired"
)

// problemStatus is the HTTP status of each problem type.
var problemStatus = map[ProblemType]int{
	ProblemAccountDoesNotExist:     http.StatusBadRequest,
	ProblemAlreadyReplaced:         http.StatusConflict,
	ProblemAlreadyRevoked:          http.StatusBadRequest,
	ProblemBadCSR:                  http.StatusBadRequest,
	ProblemBadNonce:                http.StatusBadRequest,
	ProblemBadPublicKey:            http.StatusBadRequest,
	ProblemBadRevocationReason:     http.StatusBadRequest,
	ProblemBadSignatureAlgorithm:   http.StatusBadRequest,
	ProblemCAA:                     http.StatusForbidden,
	ProblemCompound:                http.StatusForbidden,
	ProblemConnection:              http.StatusBadRequest,
	ProblemDNS:                     http.StatusBadRequest,
	ProblemExternalAccountRequired: http.StatusForbidden,
	ProblemIncorrectResponse:       http.StatusBadRequest,
	ProblemInvalidContact:          http.StatusBadRequest,
	ProblemInvalidProfile:          http.StatusBadRequest,
	ProblemMalformed:               http.StatusBadRequest,
	ProblemOrderNotReady:           http.StatusForbidden,
	ProblemRateLimited:             http.StatusTooManyRequests,
	ProblemRejectedIdentifier:      http.StatusBadRequest,
	ProblemServerInternal:          http.StatusInternalServerError,
	ProblemTLS:                     http.StatusBadRequest,
	ProblemUnauthorized:            http.StatusForbidden,
	ProblemUnsupportedContact:      http.StatusBadRequest,
	ProblemUnsupportedIdentifier:   http.StatusBadRequest,
	ProblemUserActionRequired:      http.StatusForbidden,
}

// Status is the HTTP status of t's problem documents.
func (t ProblemType) Status() int {
	if s, ok := problemStatus[t]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// URN is t in its namespace, as a problem document carries it.
func (t ProblemType) URN() string { return problemNS + string(t) }

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

// kind is p's type without its namespace.
func (p *Problem) kind() ProblemType { return ProblemType(strings.TrimPrefix(p.Type, problemNS)) }

func (p *Problem) Unwrap() error { return p.cause }

// problem is a problem document of type t with its status.
func problem(t ProblemType, format string, args ...any) *Problem {
	return &Problem{Type: t.URN(), Status: t.Status(), Detail: fmt.Sprintf(format, args...)}
}

// problemWithStatus is a problem document of type t with another status
// than t's own (malformed as 404, 405, 409, 413, 415).
func problemWithStatus(t ProblemType, status int, format string, args ...any) *Problem {
	p := problem(t, format, args...)
	p.Status = status
	return p
}

func malformed(format string, args ...any) *Problem {
	return problem(ProblemMalformed, format, args...)
}

func unauthorized(format string, args ...any) *Problem {
	return problem(ProblemUnauthorized, format, args...)
}

func badNonce(format string, args ...any) *Problem { return problem(ProblemBadNonce, format, args...) }

func badCSR(format string, args ...any) *Problem { return problem(ProblemBadCSR, format, args...) }

func notFound(what string) *Problem {
	return problemWithStatus(ProblemMalformed, http.StatusNotFound, "%s not found", what)
}

// internalError hides err from the client; it is logged with the request.
func internalError(err error) *Problem {
	p := problem(ProblemServerInternal, "internal error")
	if errors.Is(err, storage.ErrUnavailable) {
		p.Status = http.StatusServiceUnavailable
		p.Detail = "storage temporarily unavailable"
		p.retryAfter = 5
	}
	p.cause = err
	return p
}

// asProblem is the one mapping of the errors handlers return to the
// problem the client sees: a *Problem as it is, a revocation's refusals
// as their ACME types, an issuer's refusal (also through
// *IssuerRevokeError) as its kind, and anything else as serverInternal
// (503 with Retry-After when storage is unavailable), its cause kept for
// the log.
func asProblem(err error) *Problem {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, ErrAlreadyRevoked):
		return problem(ProblemAlreadyRevoked, "certificate is already revoked")
	case errors.Is(err, ErrCertificateExpired):
		return unauthorized("certificate has expired")
	}
	return issueProblem(err)
}

// validationProblem maps a validate error kind to its ACME problem type.
func validationProblem(err error) *Problem {
	var ve *validate.Error
	if !errors.As(err, &ve) {
		p := problem(ProblemServerInternal, "validation failed")
		p.cause = err
		return p
	}
	typ := ProblemUnauthorized
	switch ve.Kind {
	case validate.KindConnection:
		typ = ProblemConnection
	case validate.KindDNS:
		typ = ProblemDNS
	case validate.KindIncorrectResponse:
		typ = ProblemIncorrectResponse
	case validate.KindCAA:
		typ = ProblemCAA
	case validate.KindTLS:
		typ = ProblemTLS
	}
	return problemWithStatus(typ, http.StatusBadRequest, "%s", ve.Detail)
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
