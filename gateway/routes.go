package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Resource paths under PathPrefix.
const (
	PathDirectory  = "/directory"
	pathNewNonce   = "/new-nonce"
	pathNewAccount = "/new-account"
	pathNewOrder   = "/new-order"
	pathRevoke     = "/revoke-cert"
	pathKeyChange  = "/key-change"
	pathAccount    = "/account/"
	pathOrder      = "/order/"
	pathAuthz      = "/authz/"
	pathChallenge  = "/chall/"
	pathCert       = "/cert/"
)

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

// isResource reports whether rest (the path below PathPrefix) names an
// ACME resource.
func isResource(rest string) bool {
	switch rest {
	case PathDirectory, pathNewNonce, pathNewAccount, pathNewOrder, pathRevoke, pathKeyChange:
		return true
	}
	for _, p := range []string{pathAccount, pathOrder, pathAuthz, pathChallenge, pathCert} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// serveACME routes one ACME request, writes the answer and logs it.
func (h *Server) serveACME(w http.ResponseWriter, r *http.Request, rest string) {
	var resp *response
	var err error
	switch {
	case rest == PathDirectory:
		resp, err = h.directory(w, r)
	case rest == pathNewNonce:
		resp, err = h.newNonce(w, r)
	case rest == pathNewAccount:
		resp, err = h.newAccount(w, r)
	case rest == pathNewOrder:
		resp, err = h.newOrder(w, r)
	case rest == pathRevoke:
		resp, err = h.revokeCert(w, r)
	case rest == pathKeyChange:
		resp, err = h.keyChange(w, r)
	case strings.HasPrefix(rest, pathAccount):
		resp, err = h.accountResource(w, r, rest[len(pathAccount):])
	case strings.HasPrefix(rest, pathOrder):
		resp, err = h.orderResource(w, r, rest[len(pathOrder):])
	case strings.HasPrefix(rest, pathAuthz):
		resp, err = h.authzResource(w, r, rest[len(pathAuthz):])
	case strings.HasPrefix(rest, pathChallenge):
		resp, err = h.challengeResource(w, r, rest[len(pathChallenge):])
	case strings.HasPrefix(rest, pathCert):
		resp, err = h.certResource(w, r, rest[len(pathCert):])
	default:
		err = notFound("resource")
	}
	h.write(w, r, resp, err)
}

// write sends resp, or err as a problem document, with the headers every
// ACME response carries.
func (h *Server) write(w http.ResponseWriter, r *http.Request, resp *response, err error) {
	hdr := w.Header()
	if nonce, nerr := h.nonces.NewNonce(r.Context()); nerr == nil {
		hdr.Set("Replay-Nonce", nonce)
	} else if err == nil {
		err = internalError(nerr)
	}
	hdr.Set("Cache-Control", "no-store")
	hdr.Add("Link", linkHeader(h.baseURL(r)+PathDirectory, "index"))

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
		return
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
