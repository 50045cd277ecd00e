package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Every problem type has its status, and its URN is in ACME's namespace.
func TestProblemType_StatusAndURN(t *testing.T) {
	for typ, status := range problemStatus {
		if typ.Status() != status || typ.URN() != "urn:ietf:params:acme:error:"+string(typ) {
			t.Errorf("%s: status %d, URN %s", typ, typ.Status(), typ.URN())
		}
	}
	if ProblemType("nonsense").Status() != http.StatusInternalServerError {
		t.Error("an unknown problem type is not a server error")
	}
}

// asProblem is the one mapping of handlers' errors to problems.
func TestAsProblem(t *testing.T) {
	plain := errors.New("disk on fire")
	tests := []struct {
		name       string
		err        error
		typ        ProblemType
		status     int
		retryAfter int
		cause      error
	}{
		{"problem as it is", malformed("bad"), ProblemMalformed, 400, 0, nil},
		{"wrapped problem", fmt.Errorf("context: %w", notFound("order")), ProblemMalformed, 404, 0, nil},
		{"issuer refusal", &IssueError{Kind: ProblemBadCSR, Detail: "no"}, ProblemBadCSR, 400, 0, nil},
		{"issuer internal", &IssueError{Kind: ProblemServerInternal, Detail: "no"}, ProblemServerInternal, 500, 0, nil},
		{"storage unavailable", fmt.Errorf("get: %w", storage.ErrUnavailable), ProblemServerInternal, 503, 5, storage.ErrUnavailable},
		{"any other error", plain, ProblemServerInternal, 500, 0, plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := asProblem(tt.err)
			if p.Type != tt.typ.URN() || p.Status != tt.status || p.retryAfter != tt.retryAfter {
				t.Fatalf("asProblem = %s %d retry %d, want %s %d retry %d", p.Type, p.Status, p.retryAfter, tt.typ, tt.status, tt.retryAfter)
			}
			if tt.cause != nil && !errors.Is(p, tt.cause) {
				t.Fatalf("cause %v lost", tt.cause)
			}
			if tt.typ == ProblemServerInternal && tt.cause != nil && p.Detail == tt.cause.Error() {
				t.Fatal("an internal error's cause reached the client")
			}
		})
	}
}
