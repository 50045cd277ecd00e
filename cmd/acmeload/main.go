// Command acmeload is a closed-loop load generator for an ACME server, for
// sizing a deployment: -c workers, each with an account of its own, obtain
// certificates for fresh names (w<worker>-<seq>.<domain>) until -n are
// issued or -duration passes, then it reports certificates/s, the latency
// of a whole issuance (new order to certificate) and the errors, as text
// or, with -json, as one JSON object. Accounts are always made before the
// clock starts.
//
// Each worker is an efficient RFC 8555 client: it polls an authorization
// only when the server's answer to the challenge is not final ("valid" or
// "invalid"), and an order only when the answer to its finalization is
// not, then as the server's Retry-After says, or every -poll without one.
//
// It answers challenges itself: it serves DNS (TXT records for dns-01, an
// A record for every name for http-01) on -dns-addr, which must be the
// server's resolver, and for http-01 an HTTP responder on -http-addr,
// whose port must be the server's http_port. With a port of 0 a free one
// is chosen and printed; give fixed ports to configure the server before
// the run, for instance:
//
//	acme_gateway {
//		resolvers 127.0.0.1:5353
//		http_port 5002
//	}
//
//	acmeload -directory https://localhost:8443/acme/directory -root root.crt \
//		-dns-addr 127.0.0.1:5353 -http-addr 127.0.0.1:5002 -c 50 -n 1000
//
// With external account binding, a registration binds one account, so
// every worker needs its own: -eab-file lists "<key id> <HMAC key>" lines,
// one per worker at least; -eab-kid and -eab-hmac-key serve for -c 1 only.
//
// It exits 1 when no certificate was issued, 2 when it cannot start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/cmd/acmeload/loadgen"
	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("acmeload", flag.ContinueOnError)
	var (
		directory = fs.String("directory", "", "ACME directory `URL` (required)")
		workers   = fs.Int("c", 50, "concurrent workers, each with its own account")
		certs     = fs.Int("n", 1000, "certificates to obtain")
		duration  = fs.Duration("duration", 60*time.Second, "time limit, not counting account creation")
		challenge = fs.String("challenge", acme.ChallengeTypeDNS01, "challenge to answer: dns-01 or http-01")
		dnsAddr   = fs.String("dns-addr", "127.0.0.1:0", "`address` of the DNS server to serve (UDP and TCP): the server's resolver")
		httpAddr  = fs.String("http-addr", "127.0.0.1:0", "`address` of the http-01 responder: its port is the server's http_port; its IP the A record of every name")
		domain    = fs.String("domain", "load.example.com", "base `domain` of the names ordered, w<worker>-<seq>.<domain>")
		rootFile  = fs.String("root", "", "PEM `file` of the root to trust for the server's TLS (default: system roots)")
		insecure  = fs.Bool("insecure", false, "skip verifying the server's TLS certificate")
		eabFile   = fs.String("eab-file", "", "`file` of external account bindings, \"<key id> <base64url HMAC key>\" per line, one per worker")
		eabKID    = fs.String("eab-kid", "", "external account binding key id (only with -c 1; see -eab-file)")
		eabKey    = fs.String("eab-hmac-key", "", "external account binding HMAC key, base64url (only with -c 1)")
		keyType   = fs.String("key-type", "ec256", "certificate key: ec256 or rsa2048")
		http1     = fs.Bool("http1", false, "speak HTTP/1.1 only, as certbot does (default: HTTP/2 when the server offers it, as Go clients do)")
		poll      = fs.Duration("poll", 50*time.Millisecond, "wait between polls when the server sends no Retry-After (no poll follows a final answer)")
		asJSON    = fs.Bool("json", false, "print the report as one JSON object")
		cpuProf   = fs.String("cpuprofile", "", "write the tool's own CPU profile (pprof) to `file`, to see what the load costs the client")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "acmeload: "+format+"\n", a...)
		return 2
	}
	if *directory == "" {
		return fail("-directory is required")
	}
	if *workers < 1 || *certs < 1 || *duration <= 0 {
		return fail("-c, -n and -duration must be positive")
	}

	cfg := loadgen.Config{
		Directory:    *directory,
		Workers:      *workers,
		Certificates: *certs,
		Duration:     *duration,
		Challenge:    *challenge,
		Domain:       *domain,
		KeyType:      *keyType,
		PollInterval: *poll,
	}
	var rootPEM []byte
	if *rootFile != "" {
		var err error
		if rootPEM, err = os.ReadFile(*rootFile); err != nil {
			return fail("%v", err)
		}
	}
	client, err := loadgen.NewHTTPClient(rootPEM, *insecure, *workers, *http1)
	if err != nil {
		return fail("%s: %v", *rootFile, err)
	}
	cfg.HTTPClient = client
	if cfg.EAB, err = eabs(*eabFile, *eabKID, *eabKey, *workers); err != nil {
		return fail("%v", err)
	}

	if *challenge == acme.ChallengeTypeHTTP01 {
		srv, err := testsrv.StartHTTP01(*httpAddr)
		if err != nil {
			return fail("%v", err)
		}
		defer srv.Close()
		cfg.HTTP01 = srv
		fmt.Fprintf(os.Stderr, "acmeload: http-01 responder on %s (the server's http_port must be %d)\n", srv.Addr(), srv.Port())
	}
	dns, err := testsrv.StartZoneDNS(*dnsAddr, aRecord(*httpAddr))
	if err != nil {
		return fail("%v", err)
	}
	defer dns.Close()
	cfg.DNS = dns
	fmt.Fprintf(os.Stderr, "acmeload: DNS on %s (the server's resolver must be it)\n", dns.Addr())
	fmt.Fprintf(os.Stderr, "acmeload: making %d accounts, then obtaining up to %d certificates within %s\n", *workers, *certs, *duration)

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail("%v", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(os.Stdout)
	}
	if err != nil {
		return fail("%v", err)
	}
	if report.Issued == 0 {
		return 1
	}
	return 0
}

// eabs reads the bindings from the file, or makes the one from the flags,
// which serves one worker only: a registration binds one account.
func eabs(file, kid, key string, workers int) ([]acme.EAB, error) {
	switch {
	case file != "" && (kid != "" || key != ""):
		return nil, fmt.Errorf("-eab-file and -eab-kid/-eab-hmac-key exclude each other")
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		list, err := loadgen.ParseEAB(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(list) < workers {
			return nil, fmt.Errorf("%s: %d bindings for %d workers: each worker needs its own", file, len(list), workers)
		}
		return list, nil
	case kid != "" || key != "":
		if workers != 1 {
			return nil, fmt.Errorf("-eab-kid binds one account: use -c 1, or -eab-file with one binding per worker")
		}
		eab, err := loadgen.NewEAB(kid, key)
		if err != nil {
			return nil, err
		}
		return []acme.EAB{eab}, nil
	}
	return nil, nil
}

// aRecord is the address every name resolves to: the http-01 responder's
// IP, or loopback when it listens on all addresses or on a host name.
func aRecord(httpAddr string) net.IP {
	host, _, err := net.SplitHostPort(httpAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || ip.IsUnspecified() || ip.To4() == nil {
		return net.IPv4(127, 0, 0, 1)
	}
	return ip
}
