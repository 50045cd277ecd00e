// Command demo runs the ACME gateway for a trial on one machine: Caddy with
// the gateway on its embedded defaults at https://localhost:8443/acme/,
// and a DNS server on 127.0.0.1 that answers every name (say
// www.demo.test) with 127.0.0.1, which the gateway asks when it validates.
// It keeps everything in -dir; run it with `make demo` and follow the
// README's one-machine trial.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddyacmegw/caddyacmegw"
	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "caddyacmegw-demo"), "where Caddy keeps its files")
	httpsPort := flag.Int("https-port", 8443, "the gateway's HTTPS port")
	http01Port := flag.Int("http01-port", 8402, "the port http-01 validation connects to (certbot --http-01-port)")
	dnsPort := flag.Int("dns-port", 8053, "the port of the DNS server on 127.0.0.1")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *httpsPort, *http01Port, *dnsPort); err != nil {
		log.Fatalf("demo: %v", err)
	}
}

func run(ctx context.Context, dir string, httpsPort, http01Port, dnsPort int) error {
	dns, err := testsrv.StartZoneDNS(fmt.Sprintf("127.0.0.1:%d", dnsPort), net.IPv4(127, 0, 0, 1))
	if err != nil {
		return fmt.Errorf("DNS server: %w", err)
	}
	defer dns.Close()
	caddyfile := demoCaddyfile(dir, httpsPort, http01Port, dns.Addr())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o600); err != nil {
		return err
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return fmt.Errorf("adapting the demo Caddyfile: %w", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	defer caddy.Stop()
	fmt.Printf(`
The gateway is up: https://localhost:%d/acme/directory
Names under demo.test resolve to 127.0.0.1 through the DNS server at %s.
Caddy's files, and the Caddyfile it runs, are in %s.
Clients trust %s.
Stop with Ctrl-C.
`, httpsPort, dns.Addr(), dir, filepath.Join(dir, "caddy", "pki", "authorities", "local", "root.crt"))
	<-ctx.Done()
	return nil
}

// demoCaddyfile is the gateway on its defaults, validating through the
// demo's DNS server and on loopback, which it refuses by default.
func demoCaddyfile(dir string, httpsPort, http01Port int, dnsAddr string) string {
	return fmt.Sprintf(`{
	admin off
	skip_install_trust
	https_port %[1]d
	http_port %[2]d
	storage file_system %[3]s
}

localhost:%[1]d {
	tls internal
	acme_gateway {
		resolvers %[4]s
		http_port %[5]d
		deny_validation_to none
	}
}
`, httpsPort, httpsPort+1, filepath.Join(dir, "caddy"), dnsAddr, http01Port)
}
