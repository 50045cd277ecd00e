package gateway

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The protocol and the leaf packages know nothing of Caddy: none of them
// depends, even indirectly, on a package of github.com/caddyserver.
func TestCaddyFree(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command to list dependencies with")
		}
		t.Skip("no go command to list dependencies with")
	}
	pkgs := []string{".", "../storage", "../validate", "../cm", "../internal/testsrv", "../internal/testca"}
	for _, pkg := range pkgs {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/caddyserver/") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
