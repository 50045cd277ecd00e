package caddyacmegw

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/caddystore"
	"github.com/caddyacmegw/caddyacmegw/storage/janitor"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
)

func init() {
	caddy.RegisterModule(CaddyStorage{})
	caddy.RegisterModule(MemoryStorage{})
}

// StoreOpener is what a module in the acme_gateway.storage namespace
// provides: the store of the gateway named name, and a function that
// releases it on Cleanup. A store that keeps what expires deletes it in the
// background (see startJanitor), for as long as it is open.
type StoreOpener interface {
	OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error)
}

// CaddyStorage keeps registrations in Caddy's configured storage
// (file_system by default, or any clustered storage module), under
// "acme_gateway/<name>/".
type CaddyStorage struct{}

// CaddyModule returns the Caddy module information.
func (CaddyStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.storage.caddy",
		New: func() caddy.Module { return new(CaddyStorage) },
	}
}

// OpenStore implements StoreOpener.
func (CaddyStorage) OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error) {
	return caddystore.New(ctx.Storage(), caddystore.Prefix(name)), func() error { return nil }, nil
}

// MemoryStorage keeps registrations in memory: lost when Caddy stops, but
// kept across config reloads. For tests and benchmarks.
type MemoryStorage struct{}

type memoryStore struct {
	*memory.Store
	janitor *janitor.Janitor
}

func (m memoryStore) Destruct() error {
	m.janitor.Stop()
	return nil
}

// CaddyModule returns the Caddy module information.
func (MemoryStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.storage.memory",
		New: func() caddy.Module { return new(MemoryStorage) },
	}
}

// OpenStore implements StoreOpener.
func (MemoryStorage) OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error) {
	m, release, err := shared(memoryStores, name, func() (memoryStore, error) {
		s := memory.New()
		return memoryStore{s, startJanitor(ctx, s)}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return m.Store, release, nil
}

// Interface guards
var (
	_ StoreOpener = CaddyStorage{}
	_ StoreOpener = MemoryStorage{}
)
