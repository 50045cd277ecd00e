package cmissuer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config says how to reach CM.
type Config struct {
	// URL is the REST API base, e.g. https://cm.example.com:8443/pgwy/api.
	URL string
	// Procedure is the default token procedure for Issue.
	Procedure string
	// CertFile and KeyFile are the officer certificate (PEM, chain allowed)
	// and its unencrypted private key (PEM).
	CertFile, KeyFile string
	// RootsFile holds the PEM certificates that CM's server certificate
	// must chain to.
	RootsFile string
	// Timeout bounds each HTTP exchange with CM. Default 30s.
	Timeout time.Duration
	// Attempts is how often an idempotent call is tried. Default 3.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles after
	// each. Default 500ms.
	Backoff time.Duration
}

const (
	defaultTimeout  = 30 * time.Second
	defaultAttempts = 3
	defaultBackoff  = 500 * time.Millisecond
)

// ErrEncryptedKey is returned by New for an encrypted officer key.
var ErrEncryptedKey = errors.New("officer key is encrypted; give an unencrypted PEM key (e.g. `openssl pkey -in enc.key -out officer.key`) and protect the file instead")

// tlsConfig loads the officer credentials and the roots. Errors name files,
// never their contents.
func (cfg *Config) tlsConfig(host string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("officer certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("officer key: %w", err)
	}
	if encryptedPEM(keyPEM) {
		return nil, fmt.Errorf("%s: %w", cfg.KeyFile, ErrEncryptedKey)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("officer certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	rootsPEM, err := os.ReadFile(cfg.RootsFile)
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		return nil, fmt.Errorf("trusted roots %s: no PEM certificate", cfg.RootsFile)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      roots,
		ServerName:   host,
		Certificates: []tls.Certificate{pair},
	}, nil
}

// encryptedPEM reports whether any PEM block in b is an encrypted key:
// PKCS#8 "ENCRYPTED PRIVATE KEY" or a legacy block with a Proc-Type header.
func encryptedPEM(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return true
		}
	}
}

// baseURL checks cfg.URL and returns it without a trailing slash.
func (cfg *Config) baseURL() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, errors.New("url: cannot be parsed") // not echoed: it might carry credentials
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Not echoed: it might carry credentials.
		return nil, errors.New("url: want https://host[:port]/path, without user, query or fragment")
	}
	return u, nil
}
