package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres/pgtest"
)

// proxy forwards TCP connections from a port on 127.0.0.1 to the database,
// so that a test can take the database away (nothing listens on the port
// any more, open connections break) and bring it back on the same port.
type proxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	p.listen(t, "127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.serve(ln)
}

func (p *proxy) serve(ln net.Listener) {
	for {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // stopped meanwhile
			p.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		go func() { io.Copy(up, down); up.Close() }()
		go func() { io.Copy(down, up); down.Close() }()
	}
}

// stop closes the listener and every connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// via returns dsn with its host and port replaced by addr.
func via(t *testing.T, dsn, addr string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// closedPort returns an address on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNew_UnreachableDatabaseIsUnavailable(t *testing.T) {
	dsn := pgtest.Start(t) // only to have a DSN's shape
	pool := newPool(t, via(t, dsn, closedPort(t)))
	start := time.Now()
	s, err := New(t.Context(), pool, Options{Namespace: "gw", CleanupInterval: -1})
	if s != nil || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("New(unreachable) = %v, %v; want ErrUnavailable", s, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("New(unreachable) took %v, want < 2s", d)
	}
}

// When the database goes away every call fails fast with ErrUnavailable,
// and service resumes by itself when it returns.
func TestCalls_FailFastWhileDatabaseIsAwayAndResume(t *testing.T) {
	dsn := pgtest.Start(t)
	u, _ := url.Parse(dsn)
	p := startProxy(t, u.Host)
	// A background cleanup running through the outage must not panic either.
	s := newStore(t, newPool(t, via(t, dsn, p.addr)), Options{Namespace: "gw", CleanupInterval: 10 * time.Millisecond})
	ctx := context.Background()

	acct := &storage.Account{ID: "acct", KeyThumbprint: "thumb", Status: storage.StatusValid, CreatedAt: time.Now()}
	if err := s.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	o := &storage.Order{ID: "order", AccountID: acct.ID, Status: storage.StatusPending, Expires: time.Now().Add(time.Hour)}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	nonce, err := s.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p.stop()
	calls := map[string]func() error{
		"GetAccount":    func() error { _, err := s.GetAccount(ctx, acct.ID); return err },
		"CreateAccount": func() error { return s.CreateAccount(ctx, &storage.Account{ID: "b", KeyThumbprint: "b"}) },
		"UpdateAccount": func() error { a := *acct; return s.UpdateAccount(ctx, &a) },
		"GetOrder":      func() error { _, err := s.GetOrder(ctx, o.ID); return err },
		"UpdateOrder":   func() error { c := *o; return s.UpdateOrder(ctx, &c) },
		"ListOrders":    func() error { _, _, err := s.ListOrders(ctx, acct.ID, "", 10); return err },
		"StoreCertificate": func() error {
			c := *o
			return s.StoreCertificate(ctx, &storage.Certificate{Serial: "1", OrderID: o.ID}, &c)
		},
		"ValidAuthz": func() error {
			_, err := s.ValidAuthz(ctx, acct.ID, storage.Identifier{Type: "dns", Value: "example.com"}, false, time.Now())
			return err
		},
		"RedeemNonce":  func() error { return s.RedeemNonce(ctx, nonce) },
		"ListAccounts": func() error { _, _, err := s.ListAccounts(ctx, storage.AccountFilter{}, "", 10); return err },
		"BindAccount": func() error {
			return s.BindAccount(ctx, &storage.Account{ID: "c", KeyThumbprint: "c"}, &storage.Registration{KeyID: "k", Version: 1})
		},
		"Cleanup": func() error { _, err := s.Cleanup(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s while the database is away = %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v to fail, want < 2s", name, d)
		}
	}
	if _, err := s.NewNonce(ctx); err != nil {
		t.Errorf("NewNonce needs no database, yet: %v", err)
	}

	p.listen(t, p.addr) // the database returns
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.GetAccount(ctx, acct.ID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetAccount after the database returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.RedeemNonce(ctx, nonce); err != nil {
		t.Errorf("RedeemNonce after the database returned: %v", err)
	}
}
