package boltstore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/boltstore"
)

// sameJSON reports whether want and got encode alike.
func sameJSON(t testing.TB, want, got any) bool {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(w, g)
}

// chainPEM is as long as a typical leaf and intermediate in PEM (1.7 KB).
var chainPEM = bytes.Repeat([]byte("MIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw\n"), 27)

// randomID is like the gateway's ids: random, base64url.
func randomID() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(16))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return b
}

// client issues certificates for one account with the calls the gateway
// makes for one order with an issuer that keeps records (CM): four writes,
// and reads in between. With the local CA, finalize skips the write of the
// processing order.
type client struct {
	s    *boltstore.Store
	acct *storage.Account
}

func newClient(tb testing.TB, s *boltstore.Store) *client {
	acct := &storage.Account{ID: randomID(), KeyThumbprint: randomID() + randomID(),
		KeyJWK: []byte(`{"kty":"EC","crv":"P-256","x":"` + randomID() + `","y":"` + randomID() + `"}`),
		Status: storage.StatusValid, CreatedAt: time.Now()}
	if err := s.CreateAccount(context.Background(), acct); err != nil {
		tb.Fatal(err)
	}
	return &client{s, acct}
}

func (c *client) issue(ctx context.Context) error {
	now := time.Now()
	ident := storage.Identifier{Type: "dns", Value: strings.ToLower(randomID()[:12]) + ".example.com"}
	a := &storage.Authorization{ID: randomID(), AccountID: c.acct.ID, Identifier: ident, Status: storage.StatusPending, Expires: now.Add(24 * time.Hour)}
	for _, typ := range []string{"http-01", "dns-01", "tls-alpn-01"} {
		a.Challenges = append(a.Challenges, storage.Challenge{Type: typ, Token: randomID(), Status: storage.StatusPending})
	}
	o := &storage.Order{ID: randomID(), AccountID: c.acct.ID, Status: storage.StatusPending, Identifiers: []storage.Identifier{ident},
		AuthzIDs: []string{a.ID}, Expires: now.Add(24 * time.Hour), CreatedAt: now, UpdatedAt: now}
	if _, err := c.s.ValidAuthz(ctx, c.acct.ID, ident, false, now); !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("ValidAuthz before the order = %v, want ErrNotFound", err)
	}
	if err := c.s.CreateOrder(ctx, o, []*storage.Authorization{a}); err != nil {
		return err
	}
	a, err := c.s.GetAuthz(ctx, a.ID)
	if err != nil {
		return err
	}
	a.Status, a.Challenges[0].Status, a.Challenges[0].Validated = storage.StatusValid, storage.StatusValid, now
	if err := c.s.UpdateAuthz(ctx, a); err != nil {
		return err
	}
	if o, err = c.s.GetOrder(ctx, o.ID); err != nil {
		return err
	}
	o.Status, o.UpdatedAt, o.CSR = storage.StatusProcessing, now, randomBytes(400)
	if err := c.s.UpdateOrder(ctx, o); err != nil {
		return err
	}
	serial := "1" + hex.EncodeToString(randomBytes(15))
	cert := &storage.Certificate{Serial: serial, AccountID: c.acct.ID, OrderID: o.ID, Names: []string{ident.Value},
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), ChainPEM: chainPEM, Status: storage.StatusValid, IssuedAt: now}
	o.Status, o.UpdatedAt, o.CSR, o.CertificateSerial = storage.StatusValid, now, nil, serial
	if err := c.s.StoreCertificate(ctx, cert, o); err != nil {
		return err
	}
	if _, err := c.s.GetOrder(ctx, o.ID); err != nil {
		return err
	}
	_, err = c.s.GetCertificate(ctx, serial)
	return err
}

// BenchmarkIssuance measures one order's life, one client at a time: every
// write waits for its own commit.
func BenchmarkIssuance(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "acme.db"))
	c := newClient(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.issue(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
}

// clients is how many ACME clients BenchmarkIssuanceParallel and
// BenchmarkMemoryGrowth run at once.
const clients = 50

// BenchmarkIssuanceParallel runs issuances of 50 clients at once, each with
// its own account, so that writes share commits; its sub-benchmarks show
// what the batch delay does.
func BenchmarkIssuanceParallel(b *testing.B) {
	for _, delay := range []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "acme.db"))
			boltstore.SetBatchDelay(s, delay)
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := newClient(b, s)
				for pb.Next() {
					if err := c.issue(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
		})
	}
}

// BenchmarkMemoryGrowth issues 100,000 certificates from 50 clients and
// reports the file's size and the process's resident memory after 10,000
// and after 100,000: file-backed (pages of bbolt's mmap; the highest seen
// while issuing the last 10%) and anonymous (the Go heap, after a GC). It
// measures the whole process, so run it alone:
//
//	go test -run '^$' -bench MemoryGrowth -benchtime 1x ./storage/boltstore
func BenchmarkMemoryGrowth(b *testing.B) {
	if testing.Short() {
		b.Skip("issues 100,000 certificates")
	}
	if _, _, err := rss(); err != nil {
		b.Skipf("no resident memory figures: %v", err)
	}
	path := filepath.Join(b.TempDir(), "acme.db")
	s := open(b, path)
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = newClient(b, s)
	}
	var (
		issued atomic.Int64
		peak   maxRSS
	)
	issueUpTo := func(n int64) {
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				for i := issued.Add(1); i <= n; i = issued.Add(1) {
					if i == n-n/10 {
						peak.reset()
					}
					if err := c.issue(context.Background()); err != nil {
						b.Error(err)
						return
					}
					peak.sample()
				}
			})
		}
		wg.Wait()
		issued.Store(n)
	}
	var file, anon [2]float64
	for i, n := range []int64{10_000, 100_000} {
		start := time.Now()
		issueUpTo(n)
		elapsed := time.Since(start)
		file[i] = peak.get()
		runtime.GC()
		debug.FreeOSMemory()
		var err error
		if _, anon[i], err = rss(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		k := strconv.FormatInt(n/1000, 10) + "k"
		db := float64(fi.Size()) / 1e6
		b.ReportMetric(db, "db-MB@"+k)
		b.ReportMetric(file[i], "rss-file-MB@"+k)
		b.ReportMetric(anon[i], "rss-anon-MB@"+k)
		b.Logf("after %s issuances (%v): file %.1f MB, RssFile %.1f MB, RssAnon %.1f MB", k, elapsed.Round(time.Millisecond), db, file[i], anon[i])
	}
	b.Logf("from 10k to 100k: RssFile %+.1f MB, RssAnon %+.1f MB", file[1]-file[0], anon[1]-anon[0])
}

// maxRSS keeps the highest RssFile sampled since it was reset.
type maxRSS struct {
	mu   sync.Mutex
	file float64
	at   time.Time
}

func (m *maxRSS) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.file = 0
}

// sample reads RssFile, at most every 10 ms.
func (m *maxRSS) sample() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.at) < 10*time.Millisecond {
		return
	}
	m.at = time.Now()
	if file, _, err := rss(); err == nil {
		m.file = max(m.file, file)
	}
}

func (m *maxRSS) get() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.file
}

// rss returns the process's resident file-backed and anonymous memory, in MB.
func rss() (file, anon float64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		name, value, _ := strings.Cut(sc.Text(), ":")
		var dst *float64
		switch name {
		case "RssFile":
			dst = &file
		case "RssAnon":
			dst = &anon
		default:
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		*dst, found = kb/1000, found+1
	}
	if found != 2 {
		return 0, 0, errors.New("no RssFile and RssAnon in /proc/self/status")
	}
	return file, anon, nil
}
