package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mholt/acmez/v3/acme"
)

// TestCaddy_TwoGatewaysKeepApart runs two gateways with their own names in
// one site, on Caddy's file storage: an account made at one is unknown at
// the other.
func TestCaddy_TwoGatewaysKeepApart(t *testing.T) {
	port := freePort(t)
	storageDir := filepath.Join(t.TempDir(), "storage")
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
		name one
		path_prefix /one
	}
	acme_gateway {
		name two
		path_prefix /two
	}
}
`, globalOptions(t, "off", storageDir, ""), port)
	g := loadCaddyfile(t, caddyfile, port, "", "/one", storageDir)
	two := fmt.Sprintf("https://localhost:%d/two/directory", port)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	account := acme.Account{Contact: []string{"mailto:a@example.com"}, TermsOfServiceAgreed: true, PrivateKey: key}
	ctx := context.Background()
	c1 := &acme.Client{Directory: g.Directory, HTTPClient: g.HTTPClient()}
	made, err := c1.NewAccount(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.GetAccount(ctx, made); err != nil {
		t.Fatalf("gateway one does not find its own account: %v", err)
	}
	c2 := &acme.Client{Directory: two, HTTPClient: g.HTTPClient()}
	_, err = c2.GetAccount(ctx, account)
	var p acme.Problem
	if !errors.As(err, &p) || p.Type != acme.ProblemTypeAccountDoesNotExist {
		t.Fatalf("gateway two: got %v, want accountDoesNotExist", err)
	}
}
