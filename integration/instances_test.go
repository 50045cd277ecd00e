package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
)

// Helpers for tests that run gateways as separate Caddy processes of the
// binary buildCaddy builds, and that look into their PostgreSQL database.

// caddyProcess is a `caddy run` of the test binary, stopped when the test
// ends.
type caddyProcess struct {
	cmd  *exec.Cmd
	log  string // its standard output and error
	done chan struct{}
	err  error // of Wait, once done is closed
}

// runCaddyProcess runs bin with caddyfile and returns once the process
// serves readyURL with 200 (over TLS, trusting nothing: the local CA may
// not exist before the process makes it). When the test ends it is
// interrupted, and a data race it reported fails the test.
func runCaddyProcess(t testing.TB, bin, caddyfile, readyURL string) *caddyProcess {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{log: filepath.Join(dir, "caddy.log"), done: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting caddy: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	probe := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("caddy exited while starting: %v\n%s", p.err, p.output())
		default:
		}
		resp, err := probe.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("caddy not serving %s after 60s: %v\n%s", readyURL, lastErr, p.output())
	return nil
}

// stop interrupts the process and waits for it, killing it if it lingers.
func (p *caddyProcess) stop(t testing.TB) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if out := p.output(); strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("caddy process reported a data race:\n%s", out)
	}
}

func (p *caddyProcess) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// signJWS is a flattened ES256 JWS of payload for url with nonce, naming
// the signer by kid or, when kid is empty, carrying its key as jwk.
func signJWS(t testing.TB, key *ecdsa.PrivateKey, kid, nonce, url string, payload []byte) []byte {
	t.Helper()
	hdr := map[string]any{"alg": "ES256", "nonce": nonce, "url": url}
	if kid != "" {
		hdr["kid"] = kid
	} else {
		hdr["jwk"] = jose.JSONWebKey{Key: key.Public()}
	}
	hdrJSON, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	protected := base64.RawURLEncoding.EncodeToString(hdrJSON)
	encPayload := base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(protected + "." + encPayload))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	body, err := json.Marshal(map[string]string{
		"protected": protected,
		"payload":   encPayload,
		"signature": base64.RawURLEncoding.EncodeToString(sig),
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// freshNonce asks the new-nonce resource at newNonceURL for a nonce.
// It is safe to call from several goroutines; errors are returned, not
// reported, for that reason.
func freshNonce(hc *http.Client, newNonceURL string) (string, error) {
	resp, err := hc.Head(newNonceURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	nonce := resp.Header.Get("Replay-Nonce")
	if resp.StatusCode != http.StatusOK || nonce == "" {
		return "", fmt.Errorf("HEAD %s: HTTP %d, nonce %q", newNonceURL, resp.StatusCode, nonce)
	}
	return nonce, nil
}

// postBody posts a JWS body to target and reads the answer. Safe to call
// from several goroutines.
func postBody(ctx context.Context, hc *http.Client, target string, body []byte) (rawResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return rawResponse{}, err
	}
	req.Header.Set("Content-Type", "application/jose+json")
	resp, err := hc.Do(req)
	if err != nil {
		return rawResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rawResponse{}, err
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// pgConnect opens a connection to a test database, closed when t ends.
func pgConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

// dbCtx bounds one query of a test.
func dbCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lastSegment is what follows the last "/" of a URL: the id or serial of
// an ACME resource URL.
func lastSegment(u string) string {
	return u[strings.LastIndex(u, "/")+1:]
}
