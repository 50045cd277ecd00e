package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startChromium starts a headless Chromium with a fresh profile and
// returns a browser context for it, closed when the test ends.
//
// The flags keep it from reaching out (this machine's network refuses
// connections, which otherwise stall it) and let it run as root. It
// ignores certificate errors: the console is served over HTTPS with a
// certificate from the test Caddy's local CA, which the browser's
// throwaway profile does not trust; trusting that root would need NSS
// tools in the profile for no gain in what the test shows, and the flag
// holds for this browser only.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	bin := findClient(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, which lives as long as the
	// context of that call: it must have no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// browse runs steps in the browser with a bound on their time.
func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	read(t, ctx, chromedp.Steps(steps...))
}

// read runs one action in the browser and returns its value.
func read[T any](t *testing.T, parent context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(parent, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		// What the browser shows, read with a time of its own.
		look, cancel := context.WithTimeout(parent, 5*time.Second)
		defer cancel()
		where, _ := chromedp.Run(look, chromedp.Location())
		text, _ := chromedp.Run(look, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		t.Fatalf("browser at %s: %v\n--- page ---\n%s", where, err, text)
	}
	return v
}

// artifactsDir is where the console's screenshots go: $ARTIFACTS_DIR/console,
// else test-artifacts/console beside this package (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ARTIFACTS_DIR")
	if base == "" {
		base = "test-artifacts"
	}
	dir, err := filepath.Abs(filepath.Join(base, "console"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", dir)
	return dir
}

// screenshot saves the browser's viewport as dir/name.png.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := read(t, ctx, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
