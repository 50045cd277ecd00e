package caddyacmegw

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/boltstore"
	"github.com/caddyacmegw/caddyacmegw/storage/caddystore"
	"github.com/caddyacmegw/caddyacmegw/storage/janitor"
)

func init() {
	caddy.RegisterModule(BoltStorage{})
}

// BoltStorage keeps registrations in one embedded database file (bbolt):
// every write is on disk when the request is answered, and concurrent
// writes share one commit, so it is fast on a single instance. Only one
// process may open the file; several instances need PostgreSQL. The
// database is shared across config reloads, and so is the janitor that
// deletes, every minute, orders and authorizations that expired unfinished
// a week ago.
type BoltStorage struct {
	// Path is the database file. Default: acme_gateway/<name>.db in the
	// directory of Caddy's file_system storage, or in Caddy's data
	// directory when Caddy's storage is another module.
	Path string `json:"path,omitempty"`

	file string // the database file opened
}

// Describe says which file the records are in, for the log at start.
func (bs *BoltStorage) Describe() string { return "bolt " + bs.file }

// CaddyModule returns the Caddy module information.
func (BoltStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.storage.bolt",
		New: func() caddy.Module { return new(BoltStorage) },
	}
}

// pooledBolt is an open database, the gateway it belongs to, and the
// janitor that deletes what expires in it.
type pooledBolt struct {
	*boltstore.Store
	name    string
	janitor *janitor.Janitor
}

func (p pooledBolt) Destruct() error {
	p.janitor.Stop()
	return p.Close()
}

// OpenStore implements StoreOpener.
func (bs *BoltStorage) OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error) {
	path := bs.Path
	if path == "" {
		path = filepath.Join(storageDir(ctx), filepath.FromSlash(caddystore.Prefix(name))+".db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("bolt storage: %w", err)
	}
	// One open database per file: a reload provisions the new handler
	// before the old one lets go, and the file admits one opener.
	db, release, err := shared(boltStores, abs, func() (pooledBolt, error) {
		s, err := boltstore.Open(abs)
		if err != nil {
			return pooledBolt{}, err
		}
		return pooledBolt{s, name, startJanitor(ctx, s)}, nil
	})
	if errors.Is(err, storage.ErrUnavailable) {
		return nil, nil, fmt.Errorf("bolt storage: %w; if another Caddy runs with this storage, apply config changes to it with 'caddy reload'; "+
			"several instances of one gateway need PostgreSQL", err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bolt storage: %w", err)
	}
	if db.name != name {
		// Gateways with other names must not share records.
		_ = release()
		return nil, nil, fmt.Errorf("bolt storage: %s is the database of gateway %q; give gateway %q a file of its own", abs, db.name, name)
	}
	bs.file = abs
	return db.Store, release, nil
}

// storageDir is the directory of Caddy's file_system storage, or Caddy's
// data directory when another storage module is configured.
func storageDir(ctx caddy.Context) string {
	if fs, ok := ctx.Storage().(*certmagic.FileStorage); ok {
		return fs.Path
	}
	return caddy.AppDataDir()
}

// defaultStorage is the storage of the gateway named name when its
// configuration names none: the embedded database beside Caddy's own files
// when Caddy keeps them on a local disk; otherwise Caddy's configured
// storage itself, which is what a clustered storage module or a network
// file system is there to share. A gateway that already keeps records in
// Caddy's storage (the default of earlier versions) stays there, so that
// an upgrade finds its accounts.
func defaultStorage(ctx caddy.Context, name string, logger *zap.Logger) json.RawMessage {
	caddyStorage := json.RawMessage(`{"module":"caddy"}`)
	fs, ok := ctx.Storage().(*certmagic.FileStorage)
	if !ok || onNetworkFS(fs.Path) {
		return caddyStorage
	}
	if fs.Exists(ctx, caddystore.Prefix(name)) {
		logger.Warn("records found in Caddy's storage: staying there; set `storage caddy` to keep them, or `storage bolt` to start afresh",
			zap.String("gateway", name), zap.String("path", fs.Filename(caddystore.Prefix(name))))
		return caddyStorage
	}
	return json.RawMessage(`{"module":"bolt"}`)
}

// UnmarshalCaddyfile sets up the module: `storage bolt [<path>]`.
func (bs *BoltStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		bs.Path = d.Val()
	}
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ StoreOpener           = (*BoltStorage)(nil)
	_ caddyfile.Unmarshaler = (*BoltStorage)(nil)
)
