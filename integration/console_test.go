package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
)

// The officers' console in a real browser, on a real Caddy: the gateway
// and, on the same site, the console behind basic_auth.

const (
	consoleOfficer  = "carol"
	consolePassword = "correct horse battery staple"
)

// consoleEnv is a Caddy serving a gateway (open registration, validating
// http-01 on httpPort through dns) and its console at /console behind
// basic_auth for consoleOfficer.
type consoleEnv struct {
	g        *gateway
	base     string // the console's URL
	httpPort int
}

func startConsoleCaddy(t *testing.T) *consoleEnv {
	t.Helper()
	dns := startDNS(t)
	httpPort := freePort(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(consolePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	storageDir := t.TempDir()
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	handle /console* {
		basic_auth {
			%s %s
		}
		acme_gateway_console
	}
	acme_gateway {
		storage memory
		resolvers %s
		http_port %d
		deny_validation_to none
	}
}
`, globalOptions(t, admin, storageDir, ""), port, consoleOfficer, hash, dns.Addr(), httpPort)
	g := loadCaddyfile(t, caddyfile, port, admin, "/acme", storageDir)
	return &consoleEnv{g: g, base: fmt.Sprintf("https://localhost:%d/console", port), httpPort: httpPort}
}

// basicAuth is the Authorization header of the officer.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// officerBrowser is a browser that sends the officer's credentials with
// every request, as a browser does once its user logged in.
func officerBrowser(t *testing.T) *browserSession {
	t.Helper()
	ctx := startChromium(t)
	browse(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": basicAuth(consoleOfficer, consolePassword)},
		})
		return err
	}))
	return &browserSession{t: t, ctx: ctx, shots: artifactsDir(t)}
}

var eabFlags = regexp.MustCompile(`--eab-kid=(\S+) --eab-hmac-key=(\S+)`)

// TestConsole_OfficerEnrollsFindsRevokesAndIsAudited runs one Caddy and
// one browser for the officer's whole story, and then the attacks on the
// console (console_attacks_test.go).
func TestConsole_OfficerEnrollsFindsRevokesAndIsAudited(t *testing.T) {
	certbotBin := findCertbot(t)
	e := startConsoleCaddy(t)
	b := officerBrowser(t)

	var kid, hmacKey, certbotLine string
	t.Run("creates a registration and copies the certbot line", func(t *testing.T) {
		b.createRegistration(t, e, "Console enrolment")
		certbotLine = read(t, b.ctx, chromedp.Value(chromedp.ID("#cmd-certbot")))
		b.shot(t, "registration-created")
		if !strings.Contains(certbotLine, "--server "+e.g.Directory+" ") {
			t.Fatalf("certbot line %q does not name the directory %s", certbotLine, e.g.Directory)
		}
		m := eabFlags.FindStringSubmatch(certbotLine)
		if m == nil {
			t.Fatalf("certbot line %q holds no binding", certbotLine)
		}
		kid, hmacKey = m[1], m[2]
		// The key is shown this once: the registration's page has no trace of it.
		b.open(t, e.base+"/registrations/"+url.PathEscape(kid), "#reg-status")
		page := read(t, b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if strings.Contains(page, hmacKey) {
			t.Fatal("the registration's page shows its HMAC key again")
		}
		b.shot(t, "registration")
	})
	if kid == "" {
		t.FailNow()
	}

	const name = "console.example.com"
	cb := newCertbot(t, certbotBin, e.g)
	cb.mustRun(t, "certonly", certbotEAB(kid, hmacKey, certbotStandalone(e.httpPort, name)...)...)
	leaf := cb.checkLiveCert(t, e.g, name, name)
	serialHex := leaf.SerialNumber.Text(16)

	t.Run("finds the account and its certificate", func(t *testing.T) {
		b.open(t, e.base+"/accounts?registration="+url.QueryEscape(kid), "table")
		b.shot(t, "accounts")
		b.do(t,
			chromedp.Click(chromedp.CSS(`tbody a[href*="/accounts/"]`)),
			chromedp.WaitVisible(chromedp.ID("#account-status")),
		)
		b.shot(t, "account")
		b.do(t,
			chromedp.Click(chromedp.CSS(`tbody a[href*="/certificates/`+serialHex+`"]`)),
			chromedp.WaitVisible(chromedp.ID("#serial")),
		)
		shown := read(t, b.ctx, chromedp.Text(chromedp.ID("#serial")))
		if want := opensslColonSerial(leaf.SerialNumber.Bytes()); shown != want {
			t.Fatalf("serial shown %q, want %q as openssl prints it", shown, want)
		}
		b.shot(t, "certificate")
		b.open(t, e.base+"/certificates?name="+name, "table")
		b.shot(t, "certificates")
	})

	consoleUsable(t, e, b, serialHex)

	// Before the revocation, so that the picture shows a valid certificate.
	t.Run("overview", func(t *testing.T) {
		b.open(t, e.base+"/", ".counts")
		charts := read(t, b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(".chart svg").length`))
		if charts < 2 {
			t.Fatalf("%d charts drawn on the overview", charts)
		}
		b.shot(t, "overview")
	})

	const explanation = "https://status.example.com/incident-42"
	t.Run("asks its clients to renew early", func(t *testing.T) {
		b.open(t, e.base+"/certificates/"+serialHex, "#renewal-form")
		b.do(t,
			chromedp.SetValue(chromedp.ID("#explanation_url"), explanation),
			chromedp.Click(chromedp.CSS(`#renewal-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#renewal-info a[href="`+explanation+`"]`)),
		)
		end, err := time.Parse(time.RFC3339, read(t, b.ctx, chromedp.Evaluate[string](`document.querySelector("#window-end time").getAttribute("datetime")`)))
		if err != nil || end.After(time.Now()) {
			t.Fatalf("the certificate's window ends %s (%v), want in the past", end, err)
		}
		b.do(t, chromedp.ScrollIntoView(chromedp.ID("#renewal-info")))
		b.shot(t, "certificate-renewal")
	})

	t.Run("revokes it with a reason", func(t *testing.T) {
		b.open(t, e.base+"/certificates/"+serialHex, "#serial")
		b.do(t,
			chromedp.Click(chromedp.CSS(`a[href$="/revoke"]`)),
			chromedp.WaitVisible(chromedp.ID("#reason")),
		)
		b.shot(t, "certificate-revoke")
		b.do(t,
			chromedp.SetValue(chromedp.ID("#reason"), "4"),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID("#cert-status")),
		)
		status := read(t, b.ctx, chromedp.Text(chromedp.ID("#cert-status")))
		if !strings.Contains(status, "revoked") || !strings.Contains(status, "superseded") {
			t.Fatalf("certificate status after revoking: %q", status)
		}
		certs := e.g.admin().certificates(t, "serial="+serialHex)
		if len(certs) != 1 || certs[0].Status != "revoked" {
			t.Fatalf("admin API sees %+v", certs)
		}
	})

	t.Run("the audit trail names the officer", func(t *testing.T) {
		b.open(t, e.base+"/audit?actor="+consoleOfficer, "#audit")
		rows := read(t, b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#audit tbody tr")).map(r => Array.from(r.cells).slice(1, 4).map(c => c.textContent.trim()).join(" "))`))
		want := []string{consoleOfficer + " registration.create " + kid, consoleOfficer + " renewal.move certificate:" + serialHex,
			consoleOfficer + " certificate.revoke " + serialHex}
		if strings.Join(rows, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
		b.shot(t, "audit")
	})

	t.Run("the lego line enrolls lego", func(t *testing.T) {
		consoleLegoLine(t, e, b)
	})

	consoleAttacks(t, e, b)
}

// createRegistration fills and sends the new-registration form for
// example.com and waits for the page that shows the key once.
func (b *browserSession) createRegistration(t *testing.T, e *consoleEnv, description string) {
	t.Helper()
	b.open(t, e.base+"/new-registration", "#description")
	b.do(t,
		chromedp.SetValue(chromedp.ID("#description"), description),
		chromedp.SetValue(chromedp.ID("#allowed_domains"), "example.com"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("#cmd-certbot")),
	)
}

var legoLineEAB = regexp.MustCompile(`--eab --kid=(\S+) --hmac=(\S+) `)

// consoleLegoLine runs the lego command line of a new registration's page
// with Debian's lego binary: the line as shown, its two placeholders
// filled, and the flags of this machine (the gateway's root, the http-01
// port, a directory) added before "run".
func consoleLegoLine(t *testing.T, e *consoleEnv, b *browserSession) {
	legoBin := findClient(t, "lego")
	b.createRegistration(t, e, "Enrolled with lego")
	line := read(t, b.ctx, chromedp.Value(chromedp.ID("#cmd-lego")))
	m := legoLineEAB.FindStringSubmatch(line)
	if m == nil || !strings.HasPrefix(line, "lego --server "+e.g.Directory+" ") || !strings.HasSuffix(line, " run") {
		t.Fatalf("lego line %q: want lego --server %s --eab --kid=... --hmac=... ... run", line, e.g.Directory)
	}
	const name = "lego.example.com"
	dir := t.TempDir()
	args := strings.Fields(strings.NewReplacer("<you@example.com>", "pki@example.com", "<name>", name).Replace(line))
	args = append(args[1:len(args)-1], "--accept-tos", "--http", "--http.port", fmt.Sprintf("127.0.0.1:%d", e.httpPort), "--path", dir, "run")
	if out, err := runClient(t, legoBin, []string{"LEGO_CA_CERTIFICATES=" + e.g.RootFile}, args...); err != nil {
		t.Fatalf("lego: %v\n%s", err, out)
	}
	checkChain(t, e.g, readCertChain(t, filepath.Join(dir, "certificates", name+".crt")), name)

	// The account lego made is bound to the registration the page showed,
	// and holds the certificate.
	kid := m[1]
	accounts := e.g.admin().accounts(t, "registration="+url.QueryEscape(kid))
	if len(accounts) != 1 || accounts[0].RegistrationID != kid {
		t.Fatalf("accounts made with %s: %+v", kid, accounts)
	}
	certs := e.g.admin().certificates(t, "account="+url.QueryEscape(accounts[0].ID))
	if len(certs) != 1 || !slices.Equal(certs[0].Names, []string{name}) {
		t.Fatalf("certificates of the account lego made: %+v", certs)
	}
}

// opensslColonSerial is a serial as `openssl x509 -text` prints it.
func opensslColonSerial(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// browserSession is one officer's browser tab.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func (b *browserSession) open(t *testing.T, u, waitFor string) {
	t.Helper()
	browse(t, b.ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

func (b *browserSession) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browse(t, b.ctx, actions...)
}

func (b *browserSession) shot(t *testing.T, name string) {
	t.Helper()
	screenshot(t, b.ctx, b.shots, name)
}
