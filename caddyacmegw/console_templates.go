package caddyacmegw

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The console's templates (a page each, within the layout, with the
// renewal form's parts), stylesheet and its one small script, in the
// binary: the console needs nothing from elsewhere.
//
//go:embed consoleui/templates/*.html
var consoleTemplates embed.FS

//go:embed consoleui/static
var consoleStaticFS embed.FS

var consoleStatic, _ = fs.Sub(consoleStaticFS, "consoleui/static")

// consolePageNames are the templates besides the layout, one a page.
var consolePageNames = []string{
	"problem", "overview", "registrations", "registration_new", "registration_created", "registration_repeated",
	"registration", "accounts", "account", "certificates", "certificate", "audit", "confirm",
}

// consolePages renders the console's pages, each within the layout.
type consolePages struct {
	base  string
	pages map[string]*template.Template
}

// parseConsolePages gives the consoles their pages, parsed once a process:
// the templates are embedded, and consoles only execute them, which
// html/template allows at once from several goroutines.
var parseConsolePages = sync.OnceValues(func() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range consolePageNames {
		t, err := template.New("layout.html").Funcs(consoleFuncs).ParseFS(consoleTemplates,
			"consoleui/templates/layout.html", "consoleui/templates/renewal.html", "consoleui/templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
})

// pageData is what the layout shows around each page's Data.
type pageData struct {
	Title   string
	Nav     string
	Base    string
	CSRF    string
	Officer string
	Gateway string
	Data    any
}

// render writes one page; it renders into a buffer first, so that a
// failing template shows an error page, not half a page.
func (p consolePages) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Base = p.base
	var buf bytes.Buffer
	if err := p.pages[name].Execute(&buf, d); err != nil {
		if name != "problem" {
			p.problem(w, http.StatusInternalServerError, "the page cannot be shown")
			return
		}
		http.Error(w, "the page cannot be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// problem shows why a request failed.
func (p consolePages) problem(w http.ResponseWriter, status int, msg string) {
	p.render(w, status, "problem", pageData{Title: http.StatusText(status), Data: msg})
}

// confirmData is the step before a change that cannot be undone, or
// that reaches every certificate: the question, and the form that makes
// the change.
type confirmData struct {
	Question string
	Action   string
	Button   string
	Cancel   string
	// Reasons, when set, are offered as the change's reason.
	Reasons []revocationReason
	// Renewal, when set, asks for a renewal window and shows the moves
	// made already.
	Renewal *renewalForm
}

// confirm asks before a change that cannot be undone, or that reaches
// every certificate.
func (q *consoleRequest) confirm(w http.ResponseWriter, title, nav string, d confirmData) error {
	return q.page(w, "confirm", title, nav, d)
}

// page renders a page for q's officer and gateway.
func (q *consoleRequest) page(w http.ResponseWriter, name, title, nav string, data any) error {
	return q.pageStatus(w, http.StatusOK, name, title, nav, data)
}

// pageStatus renders a page with another status than 200.
func (q *consoleRequest) pageStatus(w http.ResponseWriter, status int, name, title, nav string, data any) error {
	q.console.pages.render(w, status, name, pageData{
		Title: title, Nav: nav, CSRF: q.csrf, Officer: q.officer.actor, Gateway: q.officer.h.Name, Data: data,
	})
	return nil
}

var consoleFuncs = template.FuncMap{
	"utc":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"serial": colonSerial,
	"reason": reasonName,
	"join":   strings.Join,
}

// colonSerial writes a serial as `openssl x509 -text` does: lower-case hex bytes
// separated by colons.
func colonSerial(hex string) string {
	whole := strings.ToLower(opensslSerial(hex))
	if len(whole)%2 == 1 {
		return whole
	}
	parts := make([]string, 0, len(whole)/2)
	for i := 0; i < len(whole); i += 2 {
		parts = append(parts, whole[i:i+2])
	}
	return strings.Join(parts, ":")
}

// revocationReason is a reason an officer may choose.
type revocationReason struct {
	Code int
	Name string
}

// revocationReasons are reasonNames in the order of their codes.
var revocationReasons = func() []revocationReason {
	var out []revocationReason
	for _, code := range slices.Sorted(maps.Keys(reasonNames)) {
		out = append(out, revocationReason{code, reasonNames[code]})
	}
	return out
}()
