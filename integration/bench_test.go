package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// BenchmarkFullIssuance measures whole issuances (new order, dns-01,
// finalize, download) by acmez clients, each with its own account, against
// the gateway (on memory, its embedded database, Caddy's file storage and
// PostgreSQL) and against Caddy's built-in acme_server in the same Caddy,
// so that the figures compare under one load on one machine.
func BenchmarkFullIssuance(b *testing.B) {
	dns := startDNS(b)
	gwPort, boltPort, fsPort, pgPort, peerPort := freePort(b), freePort(b), freePort(b), freePort(b), freePort(b)
	dsn := pgtest.Start(b)
	storageDir := filepath.Join(b.TempDir(), "storage")
	caddyfile := fmt.Sprintf(`%shttps://localhost:%d {
	tls internal
	acme_gateway {
		storage memory
		challenges dns-01
		resolvers %s
		deny_validation_to none
	}
}
https://localhost:%d {
	tls internal
	acme_gateway {
		name embedded
		storage bolt
		challenges dns-01
		resolvers %s
		deny_validation_to none
	}
}
https://localhost:%d {
	tls internal
	acme_gateway {
		name files
		storage caddy
		challenges dns-01
		resolvers %s
		deny_validation_to none
	}
}
https://localhost:%d {
	tls internal
	acme_gateway {
		name pg
		storage postgres "%s"
		challenges dns-01
		resolvers %s
		deny_validation_to none
	}
}
https://localhost:%d {
	tls internal
	acme_server {
		challenges dns-01
		resolvers %s
	}
}
`, globalOptions(b, "off", storageDir, "\tlog {\n\t\tlevel ERROR\n\t}"), gwPort, dns.Addr(), boltPort, dns.Addr(), fsPort, dns.Addr(), pgPort, dsn, dns.Addr(), peerPort, dns.Addr())
	g := loadCaddyfile(b, caddyfile, gwPort, "", "/acme", storageDir)
	peerDir := fmt.Sprintf("https://localhost:%d/acme/local/directory", peerPort)

	for _, target := range []struct{ name, dir string }{
		{"acme_gateway/memory", g.Directory},
		{"acme_gateway/bolt", fmt.Sprintf("https://localhost:%d/acme/directory", boltPort)},
		{"acme_gateway/caddy_storage", fmt.Sprintf("https://localhost:%d/acme/directory", fsPort)},
		{"acme_gateway/postgres", fmt.Sprintf("https://localhost:%d/acme/directory", pgPort)},
		{"acme_server", peerDir},
	} {
		b.Run(target.name, func(b *testing.B) {
			var seq atomic.Int64
			const perCore = 4
			b.SetParallelism(perCore)
			// Accounts are made before the clock starts: the figure is
			// issuances only.
			clients := make(chan benchAccount, perCore*runtime.GOMAXPROCS(0))
			for range cap(clients) {
				c, a := benchClient(b, g, target.dir, dns)
				clients <- benchAccount{c, a}
			}
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ba := <-clients
				client, account := ba.client, ba.account
				for pb.Next() {
					name := fmt.Sprintf("b%d.bench.example.com", seq.Add(1))
					key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					if _, err := client.ObtainCertificateForSANs(context.Background(), account, key, []string{name}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "certs/s")
		})
	}
}

type benchAccount struct {
	client  *acmez.Client
	account acme.Account
}

// benchClient registers a fresh account with an acmez client whose
// dns-01 solver writes to the loopback DNS server.
func benchClient(b *testing.B, g *gateway, directory string, dns *testsrv.ZoneDNS) (*acmez.Client, acme.Account) {
	client := &acmez.Client{
		Client: &acme.Client{
			Directory:    directory,
			HTTPClient:   g.HTTPClient(),
			PollInterval: 20 * time.Millisecond,
		},
		ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeDNS01: dnsSolver{dns}},
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	account, err := client.NewAccount(context.Background(), acme.Account{
		Contact:              []string{"mailto:bench@example.com"},
		TermsOfServiceAgreed: true,
		PrivateKey:           key,
	})
	if err != nil {
		b.Fatal(err)
	}
	return client, account
}

// dnsSolver presents dns-01 records on the loopback DNS server.
type dnsSolver struct{ dns *testsrv.ZoneDNS }

func (s dnsSolver) Present(_ context.Context, c acme.Challenge) error {
	s.dns.SetTXT(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
	return nil
}

func (s dnsSolver) CleanUp(_ context.Context, c acme.Challenge) error {
	s.dns.ClearTXT(c.DNS01TXTRecordName())
	return nil
}
