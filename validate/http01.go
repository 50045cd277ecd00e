package validate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxRedirects is how many redirects http-01 follows (RFC 8555 §10.2
	// leaves it to the server; Let's Encrypt uses 10).
	maxRedirects = 10
	// maxBodyBytes bounds the body read: a key authorization is a token
	// (at least 22 characters) plus "." plus a 43-character thumbprint.
	maxBodyBytes = 1024
	// maxHeaderBytes bounds the response headers read.
	maxHeaderBytes = 16 << 10
	// asciiSpace is the surrounding whitespace ignored in the body
	// (RFC 8555 §8.3 says trailing whitespace; leading is harmless too).
	asciiSpace = " \t\r\n"
)

// errTooManyRedirects and errBadRedirect are the causes of a KindConnection
// error from a redirect.
var (
	errTooManyRedirects = errors.New("too many redirects")
	errBadRedirect      = errors.New("redirect target not allowed")
)

// HTTP01 fetches http://<domain>:<HTTPPort>/.well-known/acme-challenge/<token>
// and compares the body, surrounding ASCII whitespace trimmed, with keyAuth.
//
// domain may also be an IP address (RFC 8738), which is then used as is.
// Redirects (at most 10) may go to http on port 80 or HTTPPort and to https
// on 443 or HTTPSPort; https certificates are not verified (RFC 8555 §8.3).
// It returns nil on success and an *Error for every validation failure; a
// malformed domain or token, a bug in the caller, gives a plain error.
func (v *Validator) HTTP01(ctx context.Context, domain, token, keyAuth string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	if keyAuth == "" {
		return errors.New("validate: empty key authorization")
	}
	if _, err := netip.ParseAddr(domain); err != nil {
		if err := checkName(domain); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	f := &fetch{v: v}
	client := f.client()
	defer client.CloseIdleConnections()

	u := v.challengeURL(domain, token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("validate: building request: %w", err)
	}
	req.Header.Set("User-Agent", v.userAgent)
	req.Header.Set("Accept", "*/*")

	resp, err := client.Do(req)
	if err != nil {
		return f.doError(ctx, u, err)
	}
	defer resp.Body.Close()
	where := f.where(resp.Request.URL.String())

	if resp.StatusCode != http.StatusOK {
		return newError(KindUnauthorized, nil, "invalid response from %s: HTTP status %d", where, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return newError(KindConnection, err, "reading response from %s: %s", where, f.reason(ctx, err))
	}
	if len(body) > maxBodyBytes {
		return newError(KindIncorrectResponse, nil, "response from %s is longer than %d bytes", where, maxBodyBytes)
	}
	// The body is never quoted: a redirect may lead validation to a page
	// the client cannot read itself, and the problem goes to the client.
	if got := strings.Trim(string(body), asciiSpace); got != keyAuth {
		return newError(KindIncorrectResponse, nil, "the key authorization from %s did not match: expected %q, got %d other bytes",
			where, keyAuth, len(got))
	}
	return nil
}

// challengeURL leaves out the port when it is 80, so the Host header is the
// bare domain as most servers expect.
func (v *Validator) challengeURL(domain, token string) string {
	host := domain
	switch {
	case v.httpPort != 80:
		host = net.JoinHostPort(domain, strconv.Itoa(v.httpPort))
	case strings.Contains(domain, ":"): // IPv6 literal
		host = "[" + domain + "]"
	}
	u := url.URL{Scheme: "http", Host: host, Path: "/.well-known/acme-challenge/" + token}
	return u.String()
}

// fetch is the state of one HTTP01 call: the address last connected to,
// for Details. Guarded by mu because the transport dials on its own
// goroutine.
type fetch struct {
	v    *Validator
	mu   sync.Mutex
	addr string
}

func (f *fetch) setRemote(addr string) {
	f.mu.Lock()
	f.addr = addr
	f.mu.Unlock()
}

// remote returns the address last connected to, "" before any.
func (f *fetch) remote() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

// where names the URL and, once connected, the address, for Details.
func (f *fetch) where(u string) string {
	if a := f.remote(); a != "" {
		return fmt.Sprintf("%s (from %s)", u, a)
	}
	return u
}

// client builds an HTTP/1.1 client for this fetch only: its dialer resolves
// through the configured resolvers, it never uses a proxy, keeps no
// connections and enforces the redirect policy.
func (f *fetch) client() *http.Client {
	t := &http.Transport{
		Proxy: nil, // never a proxy from the environment
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, newError(KindConnection, err, "invalid address %s", truncate(addr, 64))
			}
			return f.v.dialHost(ctx, host, port, f.setRemote)
		},
		//nolint:gosec // RFC 8555 §8.3: the server does not validate the certificate after an https redirect.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout:    f.v.timeout / 3,
		DisableKeepAlives:      true,
		DisableCompression:     true, // compare the bytes sent, and no decompression work
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	return &http.Client{Transport: t, CheckRedirect: f.checkRedirect}
}

// checkRedirect allows at most maxRedirects redirects, each to http on port
// 80 or HTTPPort or to https on 443 or HTTPSPort.
func (f *fetch) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return newError(KindConnection, errTooManyRedirects, "too many redirects (more than %d), last to %s", maxRedirects, truncate(req.URL.String(), 200))
	}
	u := req.URL
	port := u.Port()
	ok := false
	switch u.Scheme {
	case "http":
		ok = port == "" || port == "80" || port == strconv.Itoa(f.v.httpPort)
	case "https":
		ok = port == "" || port == "443" || port == strconv.Itoa(f.v.httpsPort)
	}
	if !ok || u.Hostname() == "" {
		return newError(KindConnection, errBadRedirect, "redirect to %s not allowed: only http on port %s and https on port %s",
			truncate(u.String(), 200), portList(80, f.v.httpPort), portList(443, f.v.httpsPort))
	}
	// The challenge URL is nobody else's business.
	req.Header.Del("Referer")
	return nil
}

// portList names the allowed ports for a Detail: "80" or "80 or 8080".
func portList(standard, configured int) string {
	if configured == standard {
		return strconv.Itoa(standard)
	}
	return fmt.Sprintf("%d or %d", standard, configured)
}

// doError turns a failed client.Do into an *Error.
func (f *fetch) doError(ctx context.Context, u string, err error) error {
	var ve *Error
	if errors.As(err, &ve) {
		return ve
	}
	return newError(KindConnection, err, "fetching %s: %s", f.where(u), f.reason(ctx, err))
}

// reason names a fetch failure; a timeout says whether the connection was
// made, which tells a firewall from a slow server.
func (f *fetch) reason(ctx context.Context, err error) string {
	if ctx.Err() != nil || isTimeout(err) {
		if f.remote() == "" {
			return "timeout during connect"
		}
		return fmt.Sprintf("timeout after connect (whole attempt limited to %s)", f.v.timeout.Round(time.Millisecond))
	}
	return connReason(err)
}

// checkToken accepts base64url tokens only, so the token cannot change the
// URL's path or query.
func checkToken(token string) error {
	if token == "" || len(token) > 256 {
		return fmt.Errorf("validate: invalid token length %d", len(token))
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errors.New("validate: token is not base64url")
		}
	}
	return nil
}
