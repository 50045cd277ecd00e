package acctcache

import (
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func account(id, status string) *storage.Account {
	return &storage.Account{ID: id, KeyJWK: []byte(`{"kty":"EC"}`), Contact: []string{"mailto:a@example.com"}, Status: status, Version: 1}
}

func TestGetAnswersOnlyWhileTrusted(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(10, func() time.Time { return now })
	c.Put(c.Begin(), account("a", "valid"))
	if _, ok := c.Get("a"); ok {
		t.Fatal("an untrusted cache answered")
	}
	c.TrustUntil(now.Add(time.Second))
	if a, ok := c.Get("a"); !ok || a.Status != "valid" {
		t.Fatalf("trusted cache: %v %v", a, ok)
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("the cache answered at the end of its trust")
	}
	c.TrustUntil(Forever)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("a cache trusted for good did not answer")
	}
	c.TrustUntil(time.Time{})
	if _, ok := c.Get("a"); ok {
		t.Fatal("the cache answered after trust was withdrawn")
	}
	c.TrustUntil(time.Unix(1000, 0)) // the cache's start, frozen clock or not
	if c.Trusted() {
		t.Fatal("trust until a time already past counts as trust")
	}
}

func TestPutAfterInvalidationIsDropped(t *testing.T) {
	c := New(10, nil)
	c.TrustUntil(Forever)
	stale := c.Begin() // a read starts and finds the old account...
	c.Invalidate("a")  // ...the account changes meanwhile...
	c.Put(stale, account("a", "valid"))
	if _, ok := c.Get("a"); ok {
		t.Fatal("a value read before an invalidation was kept")
	}
	stale = c.Begin()
	c.Reset()
	c.Put(stale, account("a", "valid"))
	if c.Len() != 0 {
		t.Fatal("a value read before a reset was kept")
	}
	c.Put(c.Begin(), account("a", "deactivated"))
	if a, ok := c.Get("a"); !ok || a.Status != "deactivated" {
		t.Fatalf("fresh read: %v %v", a, ok)
	}
	c.Invalidate("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("an invalidated account was answered")
	}
}

func TestCopiesAndBound(t *testing.T) {
	c := New(2, nil)
	c.TrustUntil(Forever)
	a := account("a", "valid")
	c.Put(c.Begin(), a)
	a.Contact[0], a.KeyJWK[0] = "changed", 'X'
	got, _ := c.Get("a")
	if got.Contact[0] != "mailto:a@example.com" || got.KeyJWK[0] != '{' {
		t.Fatalf("the cache shares memory with what was put: %+v", got)
	}
	got.Contact[0] = "changed"
	if again, _ := c.Get("a"); again.Contact[0] != "mailto:a@example.com" {
		t.Fatal("the cache shares memory with what Get returned")
	}
	for _, id := range []string{"b", "c", "d"} {
		c.Put(c.Begin(), account(id, "valid"))
	}
	if c.Len() != 2 {
		t.Fatalf("cache of 2 holds %d", c.Len())
	}
	if _, ok := c.Get("d"); !ok {
		t.Fatal("the last account put was dropped")
	}
}
