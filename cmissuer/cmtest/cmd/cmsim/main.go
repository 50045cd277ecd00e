// Command cmsim runs the cmtest Certificate Manager simulator on its own,
// for trying the gateway by hand:
//
//	go run ./cmissuer/cmtest/cmd/cmsim -approval
//
// It writes officer credentials and CM's roots to a temporary directory and
// prints the Caddyfile block that points at it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/caddyacmegw/caddyacmegw/cmissuer/cmtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	procedure := flag.String("procedure", cmtest.DefaultProcedure, "token procedure name")
	approval := flag.Bool("approval", false, "hold each request until approved: press Enter to approve all pending requests")
	flag.Parse()
	if err := run(*addr, *procedure, *approval); err != nil {
		log.Fatalf("cmsim: %v", err)
	}
}

func run(addr, procedure string, approval bool) error {
	srv, err := cmtest.Start(cmtest.Options{
		Addr:       addr,
		Procedures: map[string]cmtest.Procedure{procedure: {Approval: approval}},
		ErrorLog:   log.New(os.Stderr, "cmsim: ", log.LstdFlags),
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "cmsim-")
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := srv.MintOfficer()
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"officer.crt", certPEM, 0o644},
		{"officer.key", keyPEM, 0o600},
		{"cm-roots.pem", srv.RootsPEM(), 0o644},
		{"cm-ca-chain.pem", srv.CAChainPEM(), 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	fmt.Printf("CM simulator at %s\nofficer certificate %s\nofficer key         %s\nCM TLS roots        %s\nissuing CA chain    %s\n\n",
		srv.URL(), p("officer.crt"), p("officer.key"), p("cm-roots.pem"), p("cm-ca-chain.pem"))
	fmt.Printf(`issuer cm {
    url                 %s
    procedure           %q
    client_certificate  %s %s
    trusted_roots       %s
    timeout             30s
    pending_deadline    24h
}
`, srv.URL(), procedure, p("officer.crt"), p("officer.key"), p("cm-roots.pem"))
	if approval {
		fmt.Println("\npress Enter to approve all pending requests")
		go approveOnEnter(srv)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

// approveOnEnter approves every pending request each time a line is read.
func approveOnEnter(srv *cmtest.Server) {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for _, id := range srv.PendingIDs() {
			if err := srv.Approve(id); err != nil {
				log.Printf("cmsim: approve %s: %v", id, err)
				continue
			}
			log.Printf("cmsim: approved %s", id)
		}
	}
}
