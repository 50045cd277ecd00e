package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"path"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

// staleAccounts is a store that keeps accounts in memory and hears of no
// change until told to forget one: an instance that has not yet heard of
// another instance's change.
type staleAccounts struct {
	*memory.Store
	mu        sync.Mutex
	held      map[string]*storage.Account
	refreshes int
}

func (s *staleAccounts) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.held[id]; ok {
		cp := *a
		return &cp, nil
	}
	a, err := s.Store.GetAccount(ctx, id)
	if err == nil {
		cp := *a
		s.held[id] = &cp
	}
	return a, err
}

func (s *staleAccounts) RefreshAccount(ctx context.Context, id string) (*storage.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	a, err := s.Store.GetAccount(ctx, id)
	if err == nil {
		cp := *a
		s.held[id] = &cp
	}
	return a, err
}

func (s *staleAccounts) refreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

var _ accountRefresher = (*staleAccounts)(nil)

// rollOverElsewhere gives the client's account a new key as another
// instance would, behind the gateway's back, and has the client sign with it.
func rollOverElsewhere(t *testing.T, c *client, store *memory.Store) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: key.Public()}
	tp, err := thumbprint(jwk)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acct, err := store.GetAccount(ctx, path.Base(c.kid))
	if err != nil {
		t.Fatal(err)
	}
	acct.KeyThumbprint, acct.KeyJWK = tp, jwkJSON
	if err := store.UpdateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	c.key = key
}

func TestReadSigned_KeyRolledOverByAnotherInstanceIsReadAgain(t *testing.T) {
	g := newGateway(t)
	stale := &staleAccounts{Store: g.store, held: map[string]*storage.Account{}}
	g.h.store = stale
	c := g.newClient()
	c.register()
	c.newOrderFor("before.example.com") // the account is now held in memory
	oldKey := c.key

	rollOverElsewhere(t, c, g.store)
	c.newOrderFor("after.example.com")
	if n := stale.refreshCount(); n != 1 {
		t.Fatalf("the account was read again %d times, want once", n)
	}
	c.newOrderFor("again.example.com") // the new key is held now
	if n := stale.refreshCount(); n != 1 {
		t.Fatalf("the account was read again %d times after the new key was held, want once in all", n)
	}

	// The old key is refused, after one more read that finds the key
	// unchanged.
	c.key = oldKey
	r := c.post(g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs("old.example.com")})
	if r.status != http.StatusBadRequest || r.problemType() != problemNS+"malformed" {
		t.Fatalf("newOrder signed with the old key: %d %s", r.status, r.body)
	}
	if n := stale.refreshCount(); n != 2 {
		t.Fatalf("a bad signature read the account again %d times in all, want 2", n)
	}
}
