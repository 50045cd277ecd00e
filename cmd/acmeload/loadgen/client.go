package loadgen

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// NewHTTPClient makes the client that talks to the ACME server. rootsPEM,
// when not empty, is the only trusted root (the server's TLS certificate
// chains to it); otherwise the system's roots are. insecure skips
// verification altogether. conns is how many idle connections to keep to
// the server: one per worker, or the workers would keep opening new ones
// (net/http keeps two by default) and the figures would measure TLS
// handshakes. http1 keeps to HTTP/1.1, as certbot (python-requests) does;
// otherwise the client speaks HTTP/2 when the server offers it, as Go's
// clients (lego, Caddy) do.
func NewHTTPClient(rootsPEM []byte, insecure bool, conns int, http1 bool) (*http.Client, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: insecure}
	if len(rootsPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(rootsPEM) {
			return nil, errors.New("no PEM certificate in the root file")
		}
		tlsConfig.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	t.MaxIdleConns = max(conns, t.MaxIdleConns)
	t.MaxIdleConnsPerHost = max(conns, 2)
	if http1 {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}, nil
}

// maxEABFile bounds the EAB file read.
const maxEABFile = 16 << 20

// ParseEAB reads external account bindings, one per line as "<key id>
// <base64url HMAC key>", as an officer's export would list them. Blank
// lines and lines starting with # are skipped.
func ParseEAB(r io.Reader) ([]acme.EAB, error) {
	var out []acme.EAB
	sc := bufio.NewScanner(io.LimitReader(r, maxEABFile))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<key id> <HMAC key>\", got %d fields", n, len(fields))
		}
		eab, err := NewEAB(fields[0], fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, eab)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// NewEAB checks a key id and a base64url HMAC key (padded or not) and
// makes them a binding.
func NewEAB(kid, hmacKey string) (acme.EAB, error) {
	if kid == "" {
		return acme.EAB{}, errors.New("empty key id")
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hmacKey, "="))
	if err != nil || len(key) == 0 {
		// The key is a secret: the message does not repeat it.
		return acme.EAB{}, fmt.Errorf("HMAC key of %s is not base64url", kid)
	}
	return acme.EAB{KeyID: kid, MACKey: base64.RawURLEncoding.EncodeToString(key)}, nil
}
