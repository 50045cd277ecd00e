// Package xcaddybuild checks xcaddy.md: its build command, run as
// written against this checkout, builds a Caddy whose gateway modules are
// the ones it lists. It is a package of its own so that the build, which
// takes minutes, runs beside the other tests and under its own timeout.
package xcaddybuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const module = "github.com/caddyacmegw/caddyacmegw"

func TestXcaddyMd_BuildsTheModulesItLists(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "xcaddy.md"))
	if err != nil {
		t.Fatal(err)
	}
	build, modules := buildCommand(t, string(doc)), listedModules(t, string(doc))
	xcaddy := findXcaddy(t)

	dir := t.TempDir()
	args := strings.Fields(strings.ReplaceAll(build, "/path/to/caddyacmegw", root))[2:] // after "xcaddy build"
	args = append(args, "--output", filepath.Join(dir, "caddy"))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xcaddy, append([]string{"build"}, args...)...)
	cmd.Dir = dir
	// The module proxy is off for this module: were it asked, Go would go
	// to its VCS instead, which it cannot reach, and the build would fail.
	cmd.Env = append(os.Environ(), "GOPRIVATE="+module, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "caddy"), "list-modules").Output()
	if err != nil {
		t.Fatalf("caddy list-modules: %v", err)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "acme_gateway") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, modules) {
		t.Fatalf("list-modules shows\n%s\nxcaddy.md lists\n%s", strings.Join(got, "\n"), strings.Join(modules, "\n"))
	}
}

// buildCommand is xcaddy.md's first one-line build from a local path.
func buildCommand(t *testing.T, doc string) string {
	t.Helper()
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "xcaddy build ") && strings.Contains(line, "="+"/path/to/caddyacmegw") {
			return line
		}
	}
	t.Fatal("xcaddy.md has no one-line build from /path/to/caddyacmegw")
	return ""
}

// listedModules is the module list that xcaddy.md says list-modules shows.
func listedModules(t *testing.T, doc string) []string {
	t.Helper()
	m := regexp.MustCompile("lists\n\n```\n((?:[a-z_.]+\n)+)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("xcaddy.md has no module list")
	}
	list := strings.Fields(m[1])
	slices.Sort(list)
	return list
}

// findXcaddy is the xcaddy that .ci/deps.sh installs.
func findXcaddy(t *testing.T) string {
	t.Helper()
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	first, _, _ := strings.Cut(strings.TrimSpace(string(gopath)), string(os.PathListSeparator))
	for _, candidate := range []string{filepath.Join(first, "bin", "xcaddy"), "xcaddy"} {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("xcaddy not installed; run .ci/deps.sh")
	}
	t.Skip("xcaddy not installed; run .ci/deps.sh")
	return ""
}
