package integration

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's one-machine trial, run from the commands the README shows:
// `make demo`, then certbot obtains, renews and revokes a certificate and
// openssl shows it. Only the ports (picked free) and the directory (the
// test's own) are changed.
func TestREADME_OneMachineTrial(t *testing.T) {
	findCertbot(t)
	findClient(t, "openssl")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start, client := trialBlocks(t, string(readme))
	if strings.TrimSpace(start) != "make demo" {
		t.Fatalf("the trial starts with %q, want make demo", start)
	}
	dir := t.TempDir()
	https, http01, dns := freePort(t), freePort(t), freePort(t)
	demo := exec.Command("make", "demo", "DEMO_DIR="+dir, "DEMO_HTTPS_PORT="+strconv.Itoa(https),
		"DEMO_HTTP01_PORT="+strconv.Itoa(http01), "DEMO_DNS_PORT="+strconv.Itoa(dns))
	demo.Dir = ".."
	demo.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make, go run and the demo stop together
	var demoOut strings.Builder
	demo.Stdout, demo.Stderr = &demoOut, &demoOut
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-demo.Process.Pid, syscall.SIGTERM)
		_ = demo.Wait()
	})
	root := filepath.Join(dir, "caddy", "pki", "authorities", "local", "root.crt")
	waitForDirectory(t, "https://localhost:"+strconv.Itoa(https)+"/acme/directory", root, &demoOut)

	script := strings.NewReplacer("/tmp/caddyacmegw-demo", dir, "8443", strconv.Itoa(https), "8402", strconv.Itoa(http01)).Replace(client)
	out, err := runClient(t, "/bin/bash", nil, "-euxo", "pipefail", "-c", script)
	if err != nil {
		t.Fatalf("the trial's commands: %v\n%s\n--- demo ---\n%s", err, out, demoOut.String())
	}
	for _, want := range []string{"DNS:www.demo.test", "all renewals succeeded", "successfully revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("the trial's output lacks %q:\n%s", want, out)
		}
	}
}

// trialBlocks are the two sh blocks of the README's one-machine trial.
func trialBlocks(t *testing.T, readme string) (start, client string) {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Try it on one machine\n")
	if !ok {
		t.Fatal("README has no one-machine trial")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 2 {
		t.Fatalf("the trial has %d sh blocks, want 2", len(blocks))
	}
	return blocks[0][1], blocks[1][1]
}

// waitForDirectory waits until the demo serves its directory over TLS
// from its local root; `make demo` compiles first.
func waitForDirectory(t *testing.T, url, rootFile string, log *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if pem, err := os.ReadFile(rootFile); err == nil {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the demo did not serve %s:\n%s", url, log.String())
}
