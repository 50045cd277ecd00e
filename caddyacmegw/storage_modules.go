package caddyacmegw

import (
	"fmt"

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

// describer is a storage or issuer module that says, for the log at
// start, what it is and where its data lives, without secrets.
type describer interface{ Describe() string }

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
type CaddyStorage struct {
	where string // Caddy's storage and the records' prefix in it
}

// CaddyModule returns the Caddy module information.
func (CaddyStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.storage.caddy",
		New: func() caddy.Module { return new(CaddyStorage) },
	}
}

// OpenStore implements StoreOpener.
func (cs *CaddyStorage) OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error) {
	// A storage module's struct may hold credentials: only what it
	// chooses to say of itself (certmagic's file storage: its path).
	kind := fmt.Sprintf("%T", ctx.Storage())
	if s, ok := ctx.Storage().(fmt.Stringer); ok {
		kind = s.String()
	}
	cs.where = kind + " under " + caddystore.Prefix(name)
	s := caddystore.New(ctx.Storage(), caddystore.Prefix(name))
	// Each handler runs its own: Caddy's storage outlives them all, and
	// several instances on one clustered storage delete the same records
	// at worst twice, which does no harm.
	j := startJanitor(ctx, s)
	return s, func() error { j.Stop(); return nil }, nil
}

// Describe says where in Caddy's storage the records are, for the log at
// start.
func (cs *CaddyStorage) Describe() string { return "caddy " + cs.where }

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

// Describe says that the records are lost when Caddy stops.
func (MemoryStorage) Describe() string { return "memory (lost when Caddy stops)" }

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
	_ StoreOpener = (*CaddyStorage)(nil)
	_ StoreOpener = MemoryStorage{}
)
