package caddyacmegw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/postgres"
)

func init() {
	caddy.RegisterModule(PostgresStorage{})
}

// defaultMaxConns is the pool size unless the DSN sets pool_max_conns.
// pgx's own default, the number of CPUs but at least 4, left requests of
// 50 concurrent clients waiting 10 ms and more for a connection on a
// 2-core machine, while each statement takes well under one.
const defaultMaxConns = 16

// PostgresStorage keeps registrations in PostgreSQL, so that several Caddy
// instances serve one gateway: nonces, orders and certificates are shared.
// Connection pools are shared across config reloads.
type PostgresStorage struct {
	// DSN is the connection string (URL or key=value); TLS and every
	// other connection setting go through it. Placeholders such as
	// {env.ACMEGW_DSN} are replaced; the DSN never appears in logs. The
	// pool holds up to 16 connections unless it sets pool_max_conns.
	DSN string `json:"dsn,omitempty"`

	// StartTimeout bounds connecting and migrating at start. Default: 30s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	where string // host, port and database, without credentials
}

// Describe says which database the records are in, for the log at start;
// it never shows the DSN, which may hold a password.
func (ps *PostgresStorage) Describe() string { return "postgres " + ps.where }

// CaddyModule returns the Caddy module information.
func (PostgresStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.storage.postgres",
		New: func() caddy.Module { return new(PostgresStorage) },
	}
}

type pooledPG struct{ *pgxpool.Pool }

func (p pooledPG) Destruct() error { p.Close(); return nil }

// OpenStore implements StoreOpener.
func (ps *PostgresStorage) OpenStore(ctx caddy.Context, name string) (storage.Store, func() error, error) {
	dsn := caddy.NewReplacer().ReplaceAll(ps.DSN, "")
	if dsn == "" {
		return nil, nil, errors.New("postgres storage needs a DSN")
	}
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		ps.where = fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	}
	timeout := time.Duration(ps.StartTimeout)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// One pool per DSN, shared by gateways and kept across reloads.
	pg, release, err := shared(pgPools, dsn, func() (pooledPG, error) {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			// pgx's message may quote the DSN, password included.
			return pooledPG{}, errors.New("postgres storage: the DSN cannot be parsed")
		}
		if !strings.Contains(dsn, "pool_max_conns") {
			cfg.MaxConns = defaultMaxConns
		}
		// Not the config's context: the pool outlives this config.
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return pooledPG{}, fmt.Errorf("postgres storage: %w", err)
		}
		return pooledPG{pool}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	store, err := postgres.New(startCtx, pg.Pool, postgres.Options{Namespace: name, Logger: ctx.Slogger()})
	if err != nil {
		_ = release()
		return nil, nil, fmt.Errorf("postgres storage: %w", err)
	}
	return store, func() error {
		store.Close()
		return release()
	}, nil
}

// UnmarshalCaddyfile sets up the module: `storage postgres <dsn>`.
func (ps *PostgresStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if !d.NextArg() {
		return d.ArgErr()
	}
	ps.DSN = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "start_timeout":
			if err := durationArg(d, &ps.StartTimeout); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized postgres storage option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ StoreOpener           = (*PostgresStorage)(nil)
	_ caddyfile.Unmarshaler = (*PostgresStorage)(nil)
)
