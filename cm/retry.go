package cm

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Bounds on what is read from CM.
const (
	maxJSON   = 64 << 10
	maxSearch = 4 << 20
	maxCert   = 1 << 20
	maxError  = 4 << 10
)

// A retryPolicy says whether a failed attempt may be repeated. sent reports
// whether the request was handed a connection, i.e. whether any byte of it
// may have been written.
type retryPolicy func(e *Error, sent bool) bool

// transientOnly is for calls that cannot issue a certificate: a search
// reads, the unsigned first request of a write that PGWY wants signed only
// asks for the data to sign, and revoking a serial twice leaves the same
// one serial revoked.
func transientOnly(e *Error, _ bool) bool { return !e.Final }

// unsentOnly is for an issue request that CM carries out (the signed
// resend, or any request when PGWY signs itself), which is not idempotent:
// every one that reaches CM may sign a certificate. It is repeated only when it never
// got a connection (dial, DNS, refused, TLS handshake): then not one byte of
// it was written, so CM cannot have seen it. (net/http itself replays a
// request on a reused connection only when nothing was written, and never
// a POST without an Idempotency-Key header, which we do not send.)
func unsentOnly(e *Error, sent bool) bool { return !e.Final && !sent }

// exchange is one request to CM.
type exchange struct {
	op          string // "issue", "search" or "revoke", for errors
	method, url string
	body        []byte
	contentType string
	accept      string
	limit       int64 // bound on the answer's body
	// issuing marks a request that may issue a certificate: a transient
	// failure after it may have reached CM is Ambiguous.
	issuing bool
}

// answer is a 2xx answer from CM.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// call runs ex under policy, each attempt bounded by the Client's timeout.
// It returns the 2xx answer.
func (c *Client) call(ctx context.Context, ex exchange, policy retryPolicy) (answer, error) {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		a, sent, e := c.once(ctx, ex)
		if e == nil {
			return a, nil
		}
		if attempt >= c.attempts || !policy(e, sent) || ctx.Err() != nil {
			e.Ambiguous = ex.issuing && !e.Final && sent
			return answer{}, e
		}
		// Full jitter over [wait/2, wait), so that gateways that lost CM
		// together do not come back together.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			e.Ambiguous = ex.issuing && !e.Final && sent
			return answer{}, e
		case <-t.C:
		}
		wait *= 2
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, ex exchange) (a answer, sent bool, e *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	var rd io.Reader = http.NoBody
	if ex.body != nil {
		rd = bytes.NewReader(ex.body)
	}
	req, err := http.NewRequestWithContext(ctx, ex.method, ex.url, rd)
	if err != nil {
		return a, false, &Error{Op: ex.op, Final: true, err: err}
	}
	if ex.contentType != "" {
		req.Header.Set("Content-Type", ex.contentType)
	}
	req.Header.Set("Accept", ex.accept)
	res, err := c.hc.Do(req)
	if err != nil {
		return a, gotConn.Load(), transportError(ex.op, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _, _ := readBounded(res.Body, maxError)
		return a, true, statusError(ex.op, res.StatusCode, b)
	}
	b, tooLong, err := readBounded(res.Body, ex.limit)
	switch {
	case err != nil: // cut off mid-answer
		return a, true, transportError(ex.op, err)
	case tooLong:
		return a, true, protocolError(ex.op, res.StatusCode, "answer too long")
	}
	return answer{status: res.StatusCode, contentType: res.Header.Get("Content-Type"), body: b}, true, nil
}

// readBounded reads at most limit bytes of r and says whether there was more.
func readBounded(r io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}
