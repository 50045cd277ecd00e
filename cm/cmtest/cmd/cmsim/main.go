// Command cmsim runs the cmtest Certificate Manager simulator on its own,
// for trying the gateway by hand:
//
//	go run ./cm/cmtest/cmd/cmsim            # caller signing, 127.0.0.1:9443
//	go run ./cm/cmtest/cmd/cmsim -vro       # PGWY signs (server signing)
//
// It writes officer credentials, CM's TLS roots and its issuing chain to a
// temporary directory, prints the `issuer cm` block that points at them,
// and removes the directory when it stops (Ctrl-C).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9443", "listen address")
	procedure := flag.String("procedure", cmtest.DefaultProcedure, "token procedure name")
	vro := flag.Bool("vro", false, "PGWY signs writes itself (virtual registration officer): use `signing server`")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *procedure, *vro); err != nil {
		log.Fatalf("cmsim: %v", err)
	}
}

// run serves until ctx is done, having printed the block to out.
func run(ctx context.Context, out io.Writer, addr, procedure string, vro bool) error {
	srv, err := cmtest.Start(cmtest.Options{
		Addr:       addr,
		Procedures: map[string]cmtest.Procedure{procedure: {VRO: vro}},
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
	defer os.RemoveAll(dir)
	f, err := writeFiles(srv, dir)
	if err != nil {
		return err
	}
	f.procedure, f.url, f.vro = procedure, srv.ProcedureURL(procedure), vro
	fmt.Fprintf(out, "CM simulator: token procedure %q at %s\nfiles in %s (removed when cmsim stops)\n\n", procedure, f.url, dir)
	writeBlock(out, f)
	<-ctx.Done()
	return nil
}

// files is what the printed block points at.
type files struct {
	procedure, url          string
	vro                     bool
	officerCert, officerKey string
	roots, chain            string
}

// writeFiles writes the officer's credentials, CM's TLS roots and its
// issuing chain into dir.
func writeFiles(srv *cmtest.Server, dir string) (files, error) {
	certPEM, keyPEM, err := srv.MintOfficer()
	if err != nil {
		return files{}, err
	}
	f := files{officerCert: filepath.Join(dir, "officer.crt"), officerKey: filepath.Join(dir, "officer.key"),
		roots: filepath.Join(dir, "cm-roots.pem"), chain: filepath.Join(dir, "cm-ca-chain.pem")}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.officerCert, certPEM, 0o644},
		{f.officerKey, keyPEM, 0o600},
		{f.roots, srv.RootsPEM(), 0o644},
		{f.chain, srv.CAChainPEM(), 0o644},
	} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return files{}, err
		}
	}
	return f, nil
}

// writeBlock writes the `issuer cm` block for f, indented with tabs as
// `caddy fmt` leaves it, to go inside acme_gateway.
func writeBlock(w io.Writer, f files) {
	signing := "caller"
	if f.vro {
		signing = "server"
	}
	fmt.Fprintf(w, "issuer cm {\n")
	for _, line := range [][2]string{
		{"procedure", strconv.Quote(f.procedure) + " " + f.url},
		{"client_certificate", f.officerCert + " " + f.officerKey},
		{"signing", signing},
		{"chain", f.chain},
		{"trusted_roots", f.roots},
	} {
		fmt.Fprintf(w, "\t%-19s %s\n", line[0], line[1])
	}
	fmt.Fprintf(w, "}\n")
}
