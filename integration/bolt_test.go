package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/acmez/v3/acme"
)

// Without a storage subdirective, on Caddy's file_system storage, the
// gateway keeps its records in one database file beside Caddy's own, and
// they outlive a restart: the account is found by its key, and its
// certificate is known well enough to be revoked once.
func TestDefaultStorage_IsAnEmbeddedDatabaseThatOutlivesARestart(t *testing.T) {
	dns := startDNS(t)
	resp := startHTTP01(t)
	rc := newRestartableCaddy(t, fmt.Sprintf("resolvers %s\nhttp_port %d", dns.Addr(), resp.Port))
	g := rc.start(t)
	e := &acmeEnv{G: g, DNS: dns, HTTP: resp, TXT: &txtRecords{dns: dns, values: map[string][]string{}}}
	c, _ := acmezClient(e, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	chain, _ := acmezObtain(t, c, acct, "kept.example.com")

	db := filepath.Join(rc.storageDir, "acme_gateway", "default.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the default storage is not the database file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rc.storageDir, "acme_gateway", "default", "accounts")); err == nil {
		t.Fatal("accounts were written as Caddy storage keys as well")
	}

	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping Caddy: %v", err)
	}
	e.G = rc.start(t)
	c, _ = acmezClient(e, acme.ChallengeTypeDNS01)
	found, err := c.GetAccount(t.Context(), acme.Account{PrivateKey: acct.PrivateKey})
	if err != nil {
		t.Fatalf("looking the account up by its key after the restart: %v", err)
	}
	if found.Location != acct.Location {
		t.Fatalf("after the restart the key names account %s, want %s", found.Location, acct.Location)
	}
	if err := c.RevokeCertificate(t.Context(), found, chain[0], nil, acme.ReasonSuperseded); err != nil {
		t.Fatalf("revoking the certificate issued before the restart: %v", err)
	}
	err = c.RevokeCertificate(t.Context(), found, chain[0], nil, acme.ReasonSuperseded)
	wantACMEZProblem(t, err, "alreadyRevoked")
}
