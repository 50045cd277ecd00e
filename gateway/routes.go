package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Resources below PathPrefix, as net/http patterns: the one place their
// paths are written. Handlers read the {wildcards} with r.PathValue, and
// resourceURL builds every URL the gateway hands out from the same
// patterns.
const (
	PathDirectory     = "/directory"
	pathNewNonce      = "/new-nonce"
	pathNewAccount    = "/new-account"
	pathNewOrder      = "/new-order"
	pathRevoke        = "/revoke-cert"
	pathKeyChange     = "/key-change"
	pathAccount       = "/account/{id}"
	pathAccountOrders = "/account/{id}/orders"
	pathOrder         = "/order/{id}"
	pathOrderFinalize = "/order/{id}/finalize"
	pathAuthz         = "/authz/{id}"
	pathChallenge     = "/chall/{id}/{type}"
	pathCertificate   = "/cert/{id}"
	pathRenewalInfo   = pathRenewalInfoBase + "/{certID}"
	// pathRenewalInfoBase is the directory's renewalInfo, below which
	// each certID is served.
	pathRenewalInfoBase = "/renewal-info"
)

// resourceHandler serves one resource; the method checks are its own, so
// that a wrong method gets a problem document.
type resourceHandler func(h *Server, w http.ResponseWriter, r *http.Request) (*response, error)

// routeTable is every resource with its handler.
var routeTable = []struct {
	pattern string
	serve   resourceHandler
}{
	{PathDirectory, (*Server).directory},
	{pathNewNonce, (*Server).newNonce},
	{pathNewAccount, (*Server).newAccount},
	{pathNewOrder, (*Server).newOrder},
	{pathRevoke, (*Server).revokeCert},
	{pathKeyChange, (*Server).keyChange},
	{pathAccount, (*Server).accountResource},
	{pathAccountOrders, (*Server).accountOrders},
	{pathOrder, (*Server).orderResource},
	{pathOrderFinalize, (*Server).finalize},
	{pathAuthz, (*Server).authzResource},
	{pathChallenge, (*Server).challengeResource},
	{pathCertificate, (*Server).certResource},
	{pathRenewalInfo, (*Server).renewalInfo},
}

// newMux routes the resources below prefix; anything else below it is a
// malformed 404 problem.
func (h *Server) newMux(prefix string) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routeTable {
		mux.HandleFunc(prefix+rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			resp, err := rt.serve(h, w, r)
			h.countRequest(rt.pattern, h.write(w, r, resp, err))
		})
	}
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		h.countRequest("other", h.write(w, r, nil, notFound("resource")))
	})
	return mux
}

// resourceURL is the URL of the resource of pattern for r, its
// wildcards replaced by values in order.
func (h *Server) resourceURL(r *http.Request, pattern string, values ...string) string {
	var b strings.Builder
	b.WriteString(h.baseURL(r))
	rest := pattern
	for _, v := range values {
		before, after, ok := strings.Cut(rest, "{")
		if !ok {
			break
		}
		_, after, _ = strings.Cut(after, "}")
		b.WriteString(before)
		b.WriteString(v)
		rest = after
	}
	b.WriteString(rest)
	return b.String()
}

// response is what a resource handler answers: a status, headers and a
// JSON (or, for certificates, PEM) body.
type response struct {
	status      int
	location    string
	links       []string
	retryAfter  int
	contentType string
	body        any
	raw         []byte
}

// isResource reports whether r's path is one of the resources.
func (h *Server) isResource(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return pattern != "" && pattern != h.cfg.PathPrefix+"/"
}

// write sends resp, or err as a problem document, with the headers every
// ACME response carries, and returns the problem it sent, if any.
func (h *Server) write(w http.ResponseWriter, r *http.Request, resp *response, err error) *Problem {
	hdr := w.Header()
	switch nonce, nerr := h.nonces.NewNonce(r.Context()); {
	case nerr == nil:
		hdr.Set("Replay-Nonce", nonce)
	case err == nil && r.Method != http.MethodPost:
		err = internalError(nerr) // newNonce, the directory: nothing changed
	case err == nil:
		// A POST that succeeded may have changed something: answering it
		// with an error would have the client do it again. It gets its
		// next nonce from newNonce, or from a badNonce it retries.
		h.logger.Warn("issuing a nonce", zap.Error(nerr))
	}
	hdr.Set("Cache-Control", "no-store")
	hdr.Add("Link", linkHeader(h.resourceURL(r, PathDirectory), "index"))

	if err != nil {
		p := asProblem(err)
		h.logRequest(r, p.Status, p)
		if p.location != "" {
			hdr.Set("Location", p.location)
		}
		if p.retryAfter > 0 {
			hdr.Set("Retry-After", strconv.Itoa(p.retryAfter))
		}
		hdr.Set("Content-Type", "application/problem+json")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(p)
		return p
	}
	if resp.location != "" {
		hdr.Set("Location", resp.location)
	}
	for _, l := range resp.links {
		hdr.Add("Link", l)
	}
	if resp.retryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	h.logRequest(r, resp.status, nil)
	switch {
	case resp.raw != nil:
		hdr.Set("Content-Type", resp.contentType)
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.raw)
	case resp.body != nil:
		hdr.Set("Content-Type", "application/json")
		w.WriteHeader(resp.status)
		_ = json.NewEncoder(w).Encode(resp.body)
	default:
		w.WriteHeader(resp.status)
	}
	return nil
}

func (h *Server) logRequest(r *http.Request, status int, p *Problem) {
	if p == nil {
		if ce := h.logger.Check(zap.DebugLevel, "acme request"); ce != nil {
			ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status))
		}
		return
	}
	level := zap.InfoLevel
	if p.cause != nil {
		level = zap.ErrorLevel
	}
	if ce := h.logger.Check(level, "acme request"); ce != nil {
		fields := []zap.Field{
			zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status),
			zap.String("problem", p.Type), zap.String("detail", p.Detail),
		}
		if p.cause != nil {
			fields = append(fields, zap.Error(p.cause))
		}
		ce.Write(fields...)
	}
}

func linkHeader(url, rel string) string {
	return "<" + url + `>;rel="` + rel + `"`
}
