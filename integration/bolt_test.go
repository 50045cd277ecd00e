package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/mholt/acmez/v3/acme"
)

// Without a storage subdirective, on Caddy's file_system storage, the
// gateway keeps its records in one database file beside Caddy's own, and
// they outlive a restart: the account is found by its key, and its
// certificate is known well enough to be revoked once.
func TestDefaultStorage_IsAnEmbeddedDatabaseThatOutlivesARestart(t *testing.T) {
	dns := startDNS(t)
	resp := startHTTP01(t)
	rc := newRestartableCaddy(t, fmt.Sprintf("resolvers %s\nhttp_port %d", dns.Addr(), resp.Port()))
	g := rc.start(t)
	e := newACMEEnv(g, dns, resp)
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

// A gateway that already keeps records in Caddy's storage, the default of
// earlier versions, stays there when its configuration names no storage:
// an upgrade finds its accounts, and no database file appears.
func TestDefaultStorage_StaysInCaddyStorageWhereRecordsAre(t *testing.T) {
	dns := startDNS(t)
	resp := startHTTP01(t)
	directives := fmt.Sprintf("resolvers %s\nhttp_port %d", dns.Addr(), resp.Port())
	rc := newRestartableCaddy(t, directives+"\nstorage caddy")
	g := rc.start(t)
	e := newACMEEnv(g, dns, resp)
	c, _ := acmezClient(e, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}

	rc.caddyfile = strings.Replace(rc.caddyfile, "storage caddy\n", "", 1)
	e.G = rc.start(t)
	c, _ = acmezClient(e, acme.ChallengeTypeDNS01)
	found, err := c.GetAccount(t.Context(), acme.Account{PrivateKey: acct.PrivateKey})
	if err != nil || found.Location != acct.Location {
		t.Fatalf("account after dropping `storage caddy`: %v (found %q, want %q)", err, found.Location, acct.Location)
	}
	if _, err := os.Stat(filepath.Join(rc.storageDir, "acme_gateway", "default.db")); err == nil {
		t.Fatal("a database file was made beside records in Caddy's storage")
	}
}

// Two gateways, by name, never share one database file.
func TestBoltStorage_OneFileIsOneGateway(t *testing.T) {
	storageDir := filepath.Join(t.TempDir(), "storage")
	db := filepath.Join(t.TempDir(), "shared.db")
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	route /a/* {
		acme_gateway {
			name a
			path_prefix /a
			storage bolt %s
		}
	}
	route /b/* {
		acme_gateway {
			name b
			path_prefix /b
			storage bolt %s
		}
	}
}
`, globalOptions(t, "off", storageDir, ""), freePort(t), db, db)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = caddy.Load(cfg, true)
	t.Cleanup(func() { _ = caddy.Stop() })
	if err == nil || !strings.Contains(err.Error(), `is the database of gateway "a"`) {
		t.Fatalf("two gateways on one file: %v, want a refusal naming the first", err)
	}
}
