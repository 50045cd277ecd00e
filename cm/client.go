// Package cm is a client for Smart ID Certificate Manager's REST API
// as Protocol Gateway (PGWY) serves it: it issues certificates from PKCS#10
// requests through token procedure endpoints, signs PGWY's write operations
// as an officer (CMS), searches certificates, and revokes. It authenticates
// with an officer certificate (mutual TLS) and knows nothing of Caddy or
// ACME; cmtest is a CM simulator to test against. Every wire shape it
// relies on is in wire.go, with its evidence.
package cm

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"time"
)

// Client talks to one CM. It is safe for concurrent use.
type Client struct {
	endpoints map[string]string // procedure name → base URL
	names     []string          // the procedures, the default first
	signing   Signing
	signer    *cmsSigner // nil with SigningServer
	chain     []*x509.Certificate
	hc        *http.Client
	timeout   time.Duration
	attempts  int
	backoff   time.Duration
}

// Result is an issued certificate.
type Result struct {
	Serial string              // hex
	Chain  []*x509.Certificate // leaf first
	// UnsignedWrite says that PGWY issued on the first request, unsigned,
	// while the client was set for caller signing: the handler signs
	// itself (VRO), and the client should be set for server signing, or
	// a first request that fails after it was sent is sent again.
	UnsignedWrite bool
}

// New checks cfg and loads the officer credentials, the signer, the chain
// and the roots.
func New(cfg Config) (*Client, error) {
	eps, err := cfg.endpoints()
	if err != nil {
		return nil, fmt.Errorf("cm: %w", err)
	}
	c := &Client{endpoints: eps, signing: cfg.Signing,
		timeout: cfg.Timeout, attempts: cfg.Attempts, backoff: cfg.Backoff}
	for _, p := range cfg.Procedures {
		c.names = append(c.names, p.Name)
	}
	switch c.signing {
	case "":
		c.signing = SigningCaller
	case SigningCaller, SigningServer:
	default:
		return nil, fmt.Errorf("cm: signing %q: want %q or %q", cfg.Signing, SigningCaller, SigningServer)
	}
	if c.signing == SigningCaller {
		if c.signer, err = cfg.signer(); err != nil {
			return nil, fmt.Errorf("cm: %w", err)
		}
	}
	if cfg.ChainFile != "" {
		if c.chain, err = readCertificates("chain", cfg.ChainFile); err != nil {
			return nil, fmt.Errorf("cm: %w", err)
		}
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("cm: %w", err)
	}
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
		// A followed 307 would send an issue request a second time.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Procedures lists the configured token procedures, the default first.
func (c *Client) Procedures() []string { return slices.Clone(c.names) }

// endpoint is the base URL of procedure, the default's when empty.
func (c *Client) endpoint(procedure string) (string, error) {
	if procedure == "" {
		procedure = c.names[0]
	}
	base, ok := c.endpoints[procedure]
	if !ok {
		return "", &Error{Op: "issue", Final: true, config: true, Message: fmt.Sprintf("no endpoint for token procedure %q", procedure)}
	}
	return base, nil
}

// Issue asks CM to issue a certificate for csrDER through procedure's
// endpoint (the default's when empty), signing the request when PGWY asks.
//
// The request that CM carries out (the signed resend, or the only request
// with SigningServer) is repeated only when it failed before a connection
// to CM was established, so that CM cannot have seen it; any later
// transient failure is an *Error with Ambiguous set: CM may have issued,
// and the caller looks for the certificate with FindIssued instead of
// asking again. The unsigned first request of SigningCaller only asks for
// the data to sign, and is retried like any call that cannot issue.
func (c *Client) Issue(ctx context.Context, csrDER []byte, procedure string) (*Result, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("cm: issue: %w", err)
	}
	base, err := c.endpoint(procedure)
	if err != nil {
		return nil, err
	}
	first, err := pkcs10Exchange(base, csrDER, nil)
	if err != nil {
		return nil, err
	}
	policy := transientOnly
	if c.signing == SigningServer {
		first.issuing, policy = true, unsentOnly
	}
	a, err := c.call(ctx, first, policy)
	if err != nil {
		return nil, err
	}
	data, asked, err := challengeOf(a)
	if err != nil {
		return nil, protocolError("issue", a.status, err.Error())
	}
	if asked {
		if c.signing == SigningServer {
			return nil, &Error{Op: "issue", Status: a.status, Final: true, config: true,
				Message: "PGWY asks for the request to be signed by the caller, and signing is server: configure signing caller (with a signer), or virtual registration officer signing on PGWY's handler"}
		}
		sig, err := c.signer.sign(data)
		if err != nil {
			return nil, &Error{Op: "issue", Final: true, config: true, err: fmt.Errorf("signing dataToSign: %w", err)}
		}
		signed, err := pkcs10Exchange(base, csrDER, sig)
		if err != nil {
			return nil, err
		}
		signed.issuing = true
		if a, err = c.call(ctx, signed, unsentOnly); err != nil {
			return nil, err
		}
		if _, again, _ := challengeOf(a); again {
			return nil, protocolError("issue", a.status, "the signed request was answered with data to sign again")
		}
	}
	res, err := c.issued(a, csr)
	if err == nil && !asked && c.signing == SigningCaller {
		res.UnsignedWrite = true
	}
	return res, err
}

// pkcs10Exchange is the multipart issue request [P]: the CSR, and on the
// signed resend the signature.
func pkcs10Exchange(base string, csrDER, sig []byte) (exchange, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	parts := []struct {
		name, mediaType string
		data            []byte
	}{{PartPKCS10, MediaPKCS10, csrDER}, {PartSignature, MediaSignature, sig}}
	for _, p := range parts {
		if p.data == nil {
			continue
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.name))
		h.Set("Content-Type", p.mediaType)
		w, err := mw.CreatePart(h)
		if err == nil {
			_, err = w.Write(base64Lines(p.data))
		}
		if err != nil {
			return exchange{}, &Error{Op: "issue", Final: true, err: err}
		}
	}
	if err := mw.Close(); err != nil {
		return exchange{}, &Error{Op: "issue", Final: true, err: err}
	}
	return exchange{op: "issue", method: http.MethodPost, url: base + PathPKCS10, body: body.Bytes(),
		contentType: mw.FormDataContentType(), accept: MediaPKIXCert, limit: maxCert}, nil
}

// base64Lines is standard base64 in lines of 76 characters ending in CRLF,
// as the public client sends it.
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc)
	return out.Bytes()
}

// Revoke revokes the certificate with serial for reason through the
// default procedure's endpoint, signing the request when PGWY asks. A nil
// error means CM confirmed: by a 2xx answer to the write, or, when the
// write failed or its answer was lost (CM's answers to a revocation are
// not public), by a search that finds the certificate revoked.
func (c *Client) Revoke(ctx context.Context, serial *big.Int, reason int) error {
	base := c.endpoints[c.names[0]]
	req := RevokeRequest{CertificateSerialNumber: SerialHex(serial), RevocationReason: reason}
	err := c.revoke(ctx, base, req)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.config {
		return err
	}
	if revoked, serr := c.revokedAtCM(ctx, base, serial); serr == nil && revoked {
		return nil
	}
	return err
}

func (c *Client) revoke(ctx context.Context, base string, req RevokeRequest) error {
	a, err := c.call(ctx, revokeExchange(base, req), transientOnly)
	if err != nil {
		return err
	}
	data, asked, err := challengeOf(a)
	switch {
	case err != nil:
		// JSON that is no challenge: not a confirmation; Revoke asks the
		// search.
		return protocolError("revoke", a.status, err.Error())
	case !asked:
		return nil // a 2xx: done, whatever its body says
	case c.signing == SigningServer:
		return &Error{Op: "revoke", Status: a.status, Final: true, config: true,
			Message: "PGWY asks for the revocation to be signed by the caller, and signing is server: configure signing caller (with a signer), or virtual registration officer signing on PGWY's handler"}
	}
	sig, err := c.signer.sign(data)
	if err != nil {
		return &Error{Op: "revoke", Final: true, config: true, err: fmt.Errorf("signing dataToSign: %w", err)}
	}
	req.Signature = base64.StdEncoding.EncodeToString(sig)
	if a, err = c.call(ctx, revokeExchange(base, req), unsentOnly); err != nil {
		return err
	}
	if _, again, _ := challengeOf(a); again {
		return protocolError("revoke", a.status, "the signed request was answered with data to sign again")
	}
	return nil
}

// revokeExchange is the revoke write, in the assumed shape of RevokeRequest.
func revokeExchange(base string, req RevokeRequest) exchange {
	body, _ := json.Marshal(req) // a struct of strings and an int
	return exchange{op: "revoke", method: http.MethodPost, url: base + PathRevoke, body: body,
		contentType: mediaJSON, accept: mediaJSON, limit: maxJSON}
}

// protocolError is a 2xx answer that breaks the contract: final, since
// asking again will not mend CM.
func protocolError(op string, status int, msg string) *Error {
	return &Error{Op: op, Status: status, Message: "unexpected answer: " + msg, Final: true, protocol: true}
}
