// Package cmissuer is a client for Smart ID Certificate Manager's REST API:
// it issues certificates from PKCS#10 requests through a token procedure,
// follows requests that wait for an officer's approval, and revokes. It
// authenticates with an officer certificate (mutual TLS) and knows nothing
// of Caddy or ACME; cmtest is a strict CM simulator to test against.
package cmissuer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Client talks to one CM. It is safe for concurrent use.
type Client struct {
	base      string
	procedure string
	hc        *http.Client
	timeout   time.Duration
	attempts  int
	backoff   time.Duration
}

// Result is CM's answer to Issue or Poll.
type Result struct {
	ID      string              // CM's id of the request; Poll takes it
	Serial  string              // hex; set once issued
	Chain   []*x509.Certificate // leaf first; nil while Pending
	Pending bool                // call Poll(ID) later
}

// New checks cfg and loads the officer credentials and roots.
func New(cfg Config) (*Client, error) {
	u, err := cfg.baseURL()
	if err != nil {
		return nil, fmt.Errorf("cmissuer: %w", err)
	}
	tc, err := cfg.tlsConfig(u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("cmissuer: %w", err)
	}
	c := &Client{base: u.String(), procedure: cfg.Procedure, timeout: cfg.Timeout, attempts: cfg.Attempts, backoff: cfg.Backoff}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = defaultAttempts
	}
	if c.backoff <= 0 {
		c.backoff = defaultBackoff
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: c.timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c.hc = &http.Client{
		Transport: tr,
		// A followed 307 would send the issue POST a second time.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Issue asks CM to sign csrDER through procedure (the Config's when empty).
// Zero times and an empty email are left out of the request.
//
// The POST is retried only when it failed before a connection to CM was
// established, so that CM cannot have seen it; any later failure is a
// transient *Error with Ambiguous set, and the caller decides. Once CM
// answered 201 the certificate exists: if its chain cannot be fetched now,
// Issue returns a Pending result instead of an error, and Poll gets it.
func (c *Client) Issue(ctx context.Context, csrDER []byte, procedure string, notBefore, notAfter time.Time, email string) (*Result, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("cmissuer: issue: %w", err)
	}
	if procedure == "" {
		procedure = c.procedure
	}
	if procedure == "" {
		return nil, errors.New("cmissuer: issue: no token procedure")
	}
	req := IssueRequest{Procedure: procedure, PKCS10: base64.StdEncoding.EncodeToString(csrDER), RFC822Name: email}
	if !notBefore.IsZero() {
		req.NotBefore = notBefore.UTC().Format(TimeLayout)
	}
	if !notAfter.IsZero() {
		req.NotAfter = notAfter.UTC().Format(TimeLayout)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cmissuer: issue: %w", err)
	}
	status, resp, _, err := c.call(ctx, "issue", http.MethodPost, PathCertificates, body, maxJSON, unsentOnly)
	if err != nil {
		return nil, err
	}
	var cr CertificateResponse
	if err := json.Unmarshal(resp, &cr); err != nil || cr.ID == "" {
		return nil, protocolError("issue", status, "answer without an id")
	}
	switch status {
	case http.StatusAccepted:
		return &Result{ID: cr.ID, Pending: true}, nil
	case http.StatusCreated, http.StatusOK:
		res, err := c.fetch(ctx, cr, csr.RawSubjectPublicKeyInfo)
		if err != nil && !IsFinal(err) {
			return &Result{ID: cr.ID, Serial: cr.SerialNumber, Pending: true}, nil
		}
		return res, err
	}
	return nil, protocolError("issue", status, "unexpected status")
}

// Poll asks once whether request id was issued: a Pending result while it
// waits for approval, the chain once issued, a final *Error (KindNotFound,
// or a refusal) when it will not be.
func (c *Client) Poll(ctx context.Context, id string) (*Result, error) {
	status, resp, _, err := c.call(ctx, "details", http.MethodGet, PathDetails(id), nil, maxJSON, transientOnly)
	if err != nil {
		return nil, err
	}
	var cr CertificateResponse
	if err := json.Unmarshal(resp, &cr); err != nil {
		return nil, protocolError("details", status, "answer is not JSON")
	}
	if cr.Certificate == "" {
		return &Result{ID: id, Pending: true}, nil
	}
	cr.ID = id
	return c.fetch(ctx, cr, nil)
}

// Revoke revokes the certificate with serial serialHex. A nil error means
// CM confirmed. It is retried on transient failures: revoking one serial
// twice cannot revoke anything else. A 409 on a retry is taken as
// confirmation: an earlier attempt went through (or someone else revoked it
// meanwhile; either way CM says it is revoked).
func (c *Client) Revoke(ctx context.Context, serialHex string, reason int) error {
	body, err := json.Marshal(RevokeRequest{CertificateSerialNumber: serialHex, RevocationReason: reason})
	if err != nil {
		return fmt.Errorf("cmissuer: revoke: %w", err)
	}
	_, _, attempts, err := c.call(ctx, "revoke", http.MethodPost, PathRevoke, body, maxJSON, transientOnly)
	if attempts > 1 && Classify(err) == KindAlreadyRevoked {
		return nil
	}
	return err
}

// fetch downloads the chain of an issued certificate and checks it against
// the leaf CM sent and the CSR's key (when given).
func (c *Client) fetch(ctx context.Context, cr CertificateResponse, spki []byte) (*Result, error) {
	leafDER, err := base64.StdEncoding.DecodeString(cr.Certificate)
	if err != nil {
		return nil, protocolError("details", 0, "certificate is not base64")
	}
	status, resp, _, err := c.call(ctx, "download", http.MethodGet, PathDownload(cr.ID), nil, maxChain, transientOnly)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for rest := resp; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, protocolError("download", status, "chain holds a bad certificate")
		}
		chain = append(chain, cert)
	}
	switch {
	case len(chain) == 0:
		return nil, protocolError("download", status, "no certificate in the chain")
	case len(leafDER) > 0 && !bytes.Equal(chain[0].Raw, leafDER):
		return nil, protocolError("download", status, "chain does not start with the issued certificate")
	case spki != nil && !bytes.Equal(chain[0].RawSubjectPublicKeyInfo, spki):
		return nil, protocolError("download", status, "certificate is not for the CSR's key")
	}
	return &Result{ID: cr.ID, Serial: SerialHex(chain[0].SerialNumber), Chain: chain}, nil
}

// protocolError is a 2xx answer that breaks the contract: final, since
// asking again will not mend CM.
func protocolError(op string, status int, msg string) *Error {
	return &Error{Op: op, Status: status, Message: "unexpected answer: " + msg, Final: true, protocol: true}
}
