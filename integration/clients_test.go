package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// clientTimeout bounds one run of a client binary: issuance over loopback
// takes a few seconds, so reaching this means something hangs.
const clientTimeout = 2 * time.Minute

// findClient returns the client binary name from the first of dirs that
// holds it, or else from PATH. Without one the test skips, except in CI,
// where a missing client must not pass silently.
func findClient(t testing.TB, name string, dirs ...string) string {
	t.Helper()
	for _, dir := range dirs {
		if path, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return path
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not installed; run .ci/deps.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// runClient runs bin with args and with env added to this process's
// environment, and returns its combined output; err is non-nil when it
// exits non-zero or times out.
func runClient(t testing.TB, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), env...)
	// Everything is on loopback: never through a proxy.
	cmd.Env = append(cmd.Env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	name := filepath.Base(bin)
	if len(args) > 0 {
		name += " " + args[0]
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %v (%s)", name, err, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, clientTimeout, ctx.Err())
	}
	return string(out), err
}
