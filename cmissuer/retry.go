package cmissuer

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
	maxJSON  = 64 << 10
	maxChain = 1 << 20
	maxError = 4 << 10
)

// A retryPolicy says whether a failed attempt may be repeated. sent reports
// whether the request was handed a connection, i.e. whether any byte of it
// may have been written.
type retryPolicy func(e *Error, sent bool) bool

// transientOnly is for calls that are idempotent on CM's side: GET details
// and download read, and revoking a serial twice leaves the same one serial
// revoked. Repeating them cannot issue a certificate.
func transientOnly(e *Error, _ bool) bool { return !e.Final }

// unsentOnly is for the issue POST, which is not idempotent: every request
// that reaches CM may sign a certificate. It is repeated only when it never
// got a connection (dial, DNS, refused, TLS handshake): then not one byte of
// it was written, so CM cannot have seen it. (net/http itself replays a
// request on a reused connection only when nothing was written, and never
// a POST without an Idempotency-Key header, which we do not send.)
func unsentOnly(e *Error, sent bool) bool { return !e.Final && !sent }

// call runs one exchange with CM under policy, each attempt bounded by the
// Client's timeout. It returns the 2xx status and body, and how many
// attempts it made. A transient failure of a request that may have reached
// CM is marked Ambiguous for op "issue".
func (c *Client) call(ctx context.Context, op, method, path string, body []byte, limit int64, policy retryPolicy) (int, []byte, int, error) {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		status, resp, sent, e := c.once(ctx, op, method, path, body, limit)
		if e == nil {
			return status, resp, attempt, nil
		}
		if attempt >= c.attempts || !policy(e, sent) || ctx.Err() != nil {
			e.Ambiguous = op == "issue" && !e.Final && sent
			return 0, nil, attempt, e
		}
		// Full jitter over [wait/2, wait), so that gateways that lost CM
		// together do not come back together.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			e.Ambiguous = op == "issue" && !e.Final && sent
			return 0, nil, attempt, e
		case <-t.C:
		}
		wait *= 2
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, op, method, path string, body []byte, limit int64) (status int, resp []byte, sent bool, e *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, false, &Error{Op: op, Final: true, err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if op == "download" {
		req.Header.Set("Accept", "application/pem-certificate-chain")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, gotConn.Load(), transportError(op, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _, _ := readBounded(res.Body, maxError)
		return 0, nil, true, statusError(op, res.StatusCode, b)
	}
	b, tooLong, err := readBounded(res.Body, limit)
	switch {
	case err != nil: // cut off mid-answer
		return 0, nil, true, transportError(op, err)
	case tooLong:
		return 0, nil, true, protocolError(op, res.StatusCode, "answer too long")
	}
	return res.StatusCode, b, true, nil
}

// readBounded reads at most limit bytes of r and says whether there was more.
func readBounded(r io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}
