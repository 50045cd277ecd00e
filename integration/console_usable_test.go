package integration

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// consoleUsable runs in the browser and Caddy of
// TestConsole_OfficerEnrollsFindsRevokesAndIsAudited, once a certificate
// exists.
func consoleUsable(t *testing.T, e *consoleEnv, b *browserSession, serialHex string) {
	pages := []struct{ path, waitFor, shot string }{
		{"/", ".counts", ""}, // the overview's picture is taken later
		{"/registrations", "table", "registrations"},
		{"/new-registration", "#description", "registration-new"},
		{"/accounts", "table", ""},
		{"/certificates", "table", ""},
		{"/certificates/" + serialHex, "#serial", ""},
		{"/certificates/" + serialHex + "/revoke", "#reason", ""}, // asks only
		{"/renewal", "#window_start", ""},                         // asks only
		{"/audit", "#audit", ""},
	}
	t.Run("every form control has a label, and Tab reaches the skip link first", func(t *testing.T) {
		for _, p := range pages {
			b.open(t, e.base+p.path, p.waitFor)
			unlabelled := read(t, b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(el => !el.labels || el.labels.length === 0).map(el => el.outerHTML)`))
			if len(unlabelled) > 0 {
				t.Errorf("%s: controls without a label: %v", p.path, unlabelled)
			}
			if p.shot != "" {
				b.shot(t, p.shot)
			}
		}
		b.open(t, e.base+"/", ".counts")
		b.do(t, chromedp.KeyEvent(kb.Tab))
		if got := read(t, b.ctx, chromedp.Evaluate[string](`document.activeElement.className`)); got != "skip" {
			t.Fatalf("the first Tab focuses %q, not the skip link", got)
		}
	})

	t.Run("readable on a phone", func(t *testing.T) {
		b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		// Back to the desktop's width for the subtests after this one.
		defer b.do(t, chromedp.EmulateViewport(1280, 900))
		for _, p := range pages {
			b.open(t, e.base+p.path, p.waitFor)
			if wide := read(t, b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
				t.Errorf("%s scrolls sideways on a phone", p.path)
			}
		}
		b.open(t, e.base+"/certificates/"+serialHex, "#serial")
		b.shot(t, "phone-certificate")
	})
}
