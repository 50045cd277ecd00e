package cmtest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/cm"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// issued is one certificate CM issued.
type issued struct {
	cert      *x509.Certificate
	procedure string
	revoked   bool
	reason    int
}

// handler serves one route at one procedure's endpoint.
type handler func(w http.ResponseWriter, r *http.Request, name string, proc Procedure)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for name, proc := range s.opts.Procedures {
		base := s.paths[name]
		for route, h := range map[string]handler{RouteIssue: s.issue, RouteSearch: s.search, RouteRevoke: s.revoke} {
			method, path, _ := strings.Cut(route, " ")
			mux.HandleFunc(method+" "+base+path, s.guard(route, func(w http.ResponseWriter, r *http.Request) { h(w, r, name, proc) }))
		}
	}
	return mux
}

// guard puts h behind the counters, the faults on demand and the
// officer's role check.
func (s *Server) guard(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts.Requests[route]++
		f := s.faults
		if s.faults.drops > 0 {
			s.faults.drops--
		} else if s.faults.failN > 0 {
			s.faults.failN--
		}
		s.mu.Unlock()
		switch {
		case f.drops > 0:
			dropConnection(w)
			return
		case f.latency > 0:
			t := time.NewTimer(f.latency)
			defer t.Stop()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
		if f.failN > 0 {
			writeError(w, f.failStatus, "simulated failure")
			return
		}
		if missing := s.missingRoles(r); len(missing) > 0 {
			writeError(w, http.StatusForbidden, "officer lacks required role(s) %s", strings.Join(missing, ", "))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	}
}

// missingRoles are the required roles that the officer certificate (already
// verified by the TLS handshake) does not hold as OU values.
func (s *Server) missingRoles(r *http.Request) []string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return s.opts.RequiredRoRoles
	}
	held := r.TLS.PeerCertificates[0].Subject.OrganizationalUnit
	var missing []string
	for _, role := range s.opts.RequiredRoRoles {
		if !slices.Contains(held, role) {
			missing = append(missing, role)
		}
	}
	return missing
}

func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// normSerial is the key of s.bySerial for a wire serial.
func normSerial(serialHex string) string {
	n, ok := cm.ParseSerialHex(serialHex)
	if !ok {
		return ""
	}
	return cm.SerialHex(n)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers a refusal in the one JSON shape seen, {"msg": ...}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, cm.ErrorResponse{Msg: fmt.Sprintf(format, args...)})
}

// decodeBase64Lines reads standard base64 with or without line breaks.
func decodeBase64Lines(b []byte) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, string(b)))
}
