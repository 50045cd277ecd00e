// Package loadgen is a closed-loop load generator for an ACME server, the
// logic of cmd/acmeload: a number of workers, each an ACME client with an
// account of its own, obtain certificates for fresh names one after the
// other until enough are issued or a time limit passes. It answers the
// challenges itself, through a DNS server (dns-01) or an http-01
// responder on loopback that the server under load is pointed at.
//
// Each issuance is what an efficient RFC 8555 client does: a new order,
// one challenge for each authorization not yet valid, finalization with a
// CSR for a fresh key, and the download of the default chain. It waits
// only where the server's answer is not final: no authorization is polled
// after a challenge answered "valid", nor an order after a finalization
// answered "valid". Polls are as far apart as the server's Retry-After
// says, or the poll interval without one (acmez does not pass on the
// Retry-After of a challenge's answer, so the first poll of an
// authorization follows the interval). A slow issuance is then the
// server's, not the client's sleeping.
package loadgen

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// Config is one run. Zero fields take the defaults their comments state.
type Config struct {
	// Directory is the ACME directory URL. Required.
	Directory string
	// Workers is how many clients run at once, each with its own
	// account. Default 50.
	Workers int
	// Certificates is how many certificates to obtain. Default 1000.
	Certificates int
	// Duration is the time limit of the load; accounts are made before it
	// starts. Default 60s.
	Duration time.Duration
	// Challenge is "dns-01" (default) or "http-01".
	Challenge string
	// Domain is the base of the names ordered: w<worker>-<seq>.<Domain>.
	// Default "load.example.com".
	Domain string
	// KeyType is the certificates' key: "ec256" (default) or "rsa2048".
	KeyType string
	// PollInterval is the wait between polls of an authorization or an
	// order when the server sends no Retry-After; there are none when the
	// server answers a challenge and a finalization with their outcome.
	// Default 50ms.
	PollInterval time.Duration
	// HTTPClient talks to the ACME server. Default: system roots and one
	// idle connection per worker (see NewHTTPClient).
	HTTPClient *http.Client
	// EAB, when set, holds one external account binding per worker: a
	// registration binds one account only. Extra ones are unused.
	EAB []acme.EAB
	// DNS serves the dns-01 TXT records. Required for dns-01.
	DNS *testsrv.ZoneDNS
	// HTTP01 serves the http-01 key authorizations. Required for http-01.
	HTTP01 *testsrv.HTTP01
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 50
	}
	if c.Certificates == 0 {
		c.Certificates = 1000
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.Challenge == "" {
		c.Challenge = acme.ChallengeTypeDNS01
	}
	if c.Domain == "" {
		c.Domain = "load.example.com"
	}
	if c.KeyType == "" {
		c.KeyType = "ec256"
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.HTTPClient == nil {
		c.HTTPClient, _ = NewHTTPClient(nil, false, c.Workers, false)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Directory == "":
		return errors.New("no directory URL")
	case c.Workers < 0 || c.Certificates < 0 || c.Duration < 0 || c.PollInterval < 0:
		return errors.New("workers, certificates, duration and poll interval must not be negative")
	case c.EAB != nil && len(c.EAB) < c.Workers:
		return fmt.Errorf("%d external account bindings for %d workers: each worker needs its own, as a registration binds one account", len(c.EAB), c.Workers)
	}
	if _, err := newKey(c.KeyType); err != nil {
		return err
	}
	switch c.Challenge {
	case acme.ChallengeTypeDNS01:
		if c.DNS == nil {
			return errors.New("dns-01 needs a DNS server")
		}
	case acme.ChallengeTypeHTTP01:
		if c.HTTP01 == nil {
			return errors.New("http-01 needs an http-01 responder")
		}
	default:
		return fmt.Errorf("challenge %q: want dns-01 or http-01", c.Challenge)
	}
	return nil
}

// Run makes one account per worker, then starts the clock and runs the
// load until cfg.Certificates are issued, cfg.Duration passes or ctx ends.
// An error means the load could not start (configuration, accounts); a
// load in which issuances fail is a report with errors.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	workers, err := makeAccounts(ctx, cfg)
	if err != nil {
		return nil, err
	}

	l := &load{target: cfg.Certificates, errs: map[string]*ErrorCount{}}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { l.work(runCtx, cfg, i, w) })
	}
	wg.Wait()

	return &Report{
		Directory: cfg.Directory,
		Challenge: cfg.Challenge,
		Workers:   cfg.Workers,
		Target:    cfg.Certificates,
		Issued:    len(l.latencies),
		Errors:    l.failed,
		Abandoned: l.abandoned,
		TopErrors: rankErrors(l.errs, topErrors),
		Duration:  time.Since(start),
		Latency:   summarize(l.latencies),
	}, nil
}

// makeAccounts registers every worker's account at once, before the clock
// starts, so that the figures are of issuance only.
func makeAccounts(ctx context.Context, cfg Config) ([]worker, error) {
	workers := make([]worker, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w, err := newWorker(ctx, cfg, i)
			workers[i], errs[i] = w, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return workers, nil
}

// load is the state the workers share.
type load struct {
	target int

	mu        sync.Mutex
	inFlight  int
	latencies []time.Duration // one per certificate issued
	failed    int
	abandoned int
	errs      map[string]*ErrorCount
}

// work is one worker's closed loop: the next issuance starts when the
// last one ends.
func (l *load) work(ctx context.Context, cfg Config, i int, w worker) {
	for seq := 1; ctx.Err() == nil && l.claim(); seq++ {
		name := fmt.Sprintf("w%d-%d.%s", i, seq, cfg.Domain)
		// The key and CSR are made before the clock starts: the latency
		// is the server's.
		names := []string{name}
		csr, err := newCSR(cfg.KeyType, names)
		if err != nil {
			l.done(ctx, name, 0, err)
			continue
		}
		start := time.Now()
		err = w.issue(ctx, names, csr)
		l.done(ctx, name, time.Since(start), err)
	}
}

// claim reserves one of the certificates still to obtain. Counting those
// in flight keeps the run from overshooting the target; a failed issuance
// gives its reservation back.
func (l *load) claim() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.latencies)+l.inFlight >= l.target {
		return false
	}
	l.inFlight++
	return true
}

// done records the end of an issuance of name.
func (l *load) done(ctx context.Context, name string, latency time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	switch {
	case err == nil:
		l.latencies = append(l.latencies, latency)
	case ctx.Err() != nil:
		// Cut short by the time limit or an interrupt, not failed.
		l.abandoned++
	default:
		l.failed++
		kind, example := classify(err, name)
		if e, ok := l.errs[kind]; ok {
			e.Count++
		} else {
			l.errs[kind] = &ErrorCount{Error: kind, Example: example, Count: 1}
		}
	}
}

// newKey makes a certificate key of keyType.
func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "ec256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("key type %q: want ec256 or rsa2048", keyType)
	}
}
