package cm

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
	// Procedures are the token procedure endpoints, each a PGWY handler
	// with its own base URL. The first is the default.
	Procedures []Procedure
	// CertFile and KeyFile are the officer certificate (PEM, chain
	// allowed) and its unencrypted private key (PEM), for mutual TLS.
	CertFile, KeyFile string
	// Signing is how PGWY's write operations are signed. Default:
	// SigningCaller.
	Signing Signing
	// SignerCertFile and SignerKeyFile are the officer whose key signs
	// write operations in SigningCaller mode (PEM; the certificate file
	// may hold the signer's chain after it). Default: CertFile and KeyFile.
	SignerCertFile, SignerKeyFile string
	// ChainFile holds the PEM CA certificates that issued certificates
	// chain to (intermediates, and optionally the root). Optional when
	// CM's answers carry the chain.
	ChainFile string
	// RootsFile holds the PEM certificates that CM's server certificate
	// must chain to.
	RootsFile string
	// Timeout bounds each HTTP exchange with CM. Default 30s.
	Timeout time.Duration
	// Attempts is how often a call that cannot issue twice is tried.
	// Default 3.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles after
	// each. Default 500ms.
	Backoff time.Duration
}

// Procedure is one token procedure and the PGWY endpoint that issues
// through it.
type Procedure struct {
	Name string
	// URL is the endpoint's REST API base, e.g.
	// https://cm.example.com:8443/pgwy/api.
	URL string
}

// Signing is who signs PGWY's write operations.
type Signing string

const (
	// SigningCaller: PGWY answers a write with data to sign, and the
	// client sends it again signed with the officer's key (PGWY's default).
	SigningCaller Signing = "caller"
	// SigningServer: PGWY signs on the caller's behalf (a virtual
	// registration officer); no signature is sent.
	SigningServer Signing = "server"
)

const (
	defaultTimeout  = 30 * time.Second
	defaultAttempts = 3
	defaultBackoff  = 500 * time.Millisecond
)

// ErrEncryptedKey is returned by New for an encrypted officer key.
var ErrEncryptedKey = errors.New("officer key is encrypted; give an unencrypted PEM key (e.g. `openssl pkey -in enc.key -out officer.key`) and protect the file instead")

// keyPair loads a certificate file and its key file. Errors name files,
// never their contents.
func keyPair(what, certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s certificate: %w", what, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s key: %w", what, err)
	}
	if encryptedPEM(keyPEM) {
		return tls.Certificate{}, fmt.Errorf("%s: %w", keyFile, ErrEncryptedKey)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s certificate %s and key %s: %w", what, certFile, keyFile, err)
	}
	return pair, nil
}

// tlsConfig loads the officer credentials and CM's roots.
func (cfg *Config) tlsConfig() (*tls.Config, error) {
	pair, err := keyPair("officer", cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	roots, err := readCertificates("trusted roots", cfg.RootsFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
	}, nil
}

// signer loads the officer that signs writes: the signer files, or the TLS
// officer's.
func (cfg *Config) signer() (*cmsSigner, error) {
	certFile, keyFile := cfg.SignerCertFile, cfg.SignerKeyFile
	if certFile == "" && keyFile == "" {
		certFile, keyFile = cfg.CertFile, cfg.KeyFile
	}
	pair, err := keyPair("signer", certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return newCMSSigner(pair)
}

// readCertificates reads every PEM certificate of file, in order.
func readCertificates(what, file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: no PEM certificate", what, file)
	}
	return out, nil
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

// endpoints checks the procedures and returns each one's base URL without
// a trailing slash, by name.
func (cfg *Config) endpoints() (map[string]string, error) {
	if len(cfg.Procedures) == 0 {
		return nil, errors.New("no token procedure: name at least one with its endpoint URL")
	}
	out := make(map[string]string, len(cfg.Procedures))
	for _, p := range cfg.Procedures {
		if p.Name == "" {
			return nil, errors.New("a token procedure without a name")
		}
		if _, dup := out[p.Name]; dup {
			return nil, fmt.Errorf("token procedure %q named twice", p.Name)
		}
		u, err := url.Parse(strings.TrimRight(p.URL, "/"))
		// The URL is not echoed: it might carry credentials.
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("token procedure %q: want an URL https://host[:port]/path, without user, query or fragment", p.Name)
		}
		out[p.Name] = u.String()
	}
	return out, nil
}
