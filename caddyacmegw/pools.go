package caddyacmegw

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/janitor"
)

// Usage pools keep what a gateway holds in memory across config reloads:
// the new handler takes the old one's before the old one lets go.
var (
	nonceStores     = caddy.NewUsagePool() // by gateway name
	validationPools = caddy.NewUsagePool() // by gateway name and limit
	pendingPools    = caddy.NewUsagePool() // by gateway name
	memoryStores    = caddy.NewUsagePool() // by gateway name
	rateCounters    = caddy.NewUsagePool() // by gateway name
	pgPools         = caddy.NewUsagePool() // by DSN
	boltStores      = caddy.NewUsagePool() // by database file
)

// shared returns the value pool keeps under key, made by create when there
// is none, and the function that releases this holder's use of it.
func shared[T caddy.Destructor](pool *caddy.UsagePool, key string, create func() (T, error)) (T, func() error, error) {
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) { return create() })
	if err != nil {
		var zero T
		return zero, nil, err
	}
	release := func() error {
		_, err := pool.Delete(key)
		return err
	}
	return v.(T), release, nil
}

// pooled makes a value a caddy.Destructor with destruct.
type pooled[T any] struct {
	v        T
	destruct func() error
}

func (p pooled[T]) Destruct() error { return p.destruct() }

// maxRedeemedNonces bounds the memory of redeemed nonces per gateway.
const maxRedeemedNonces = 100_000

// sharedNonces returns the in-memory nonce store of the gateway named name,
// kept across config reloads so that a reload does not turn every
// outstanding nonce bad, and the function that releases it.
func sharedNonces(name string, lifetime time.Duration, now func() time.Time) (*gateway.NonceStore, func() error, error) {
	p, release, err := shared(nonceStores, name, func() (pooled[*gateway.NonceStore], error) {
		n, err := gateway.NewNonceStore(lifetime, maxRedeemedNonces, now)
		return pooled[*gateway.NonceStore]{n, func() error { return nil }}, err
	})
	if err != nil {
		return nil, nil, err
	}
	p.v.SetLifetime(lifetime) // a reload may change it
	return p.v, release, nil
}

// sharedValidations returns the validations of the gateway named name,
// kept running across config reloads (a reload must not cancel a
// validation a client waits for), and the function that releases them.
func sharedValidations(name string, limit int) (*gateway.ValidationPool, func() error, error) {
	p, release, err := shared(validationPools, fmt.Sprintf("%s/%d", name, limit), func() (pooled[*gateway.ValidationPool], error) {
		v := gateway.NewValidationPool(limit)
		return pooled[*gateway.ValidationPool]{v, v.Stop}, nil
	})
	return p.v, release, err
}

// sharedPending returns the pending orders of the gateway named name, kept
// across config reloads, and the function that releases them.
func sharedPending(name string) (*gateway.PendingOrders, func() error, error) {
	p, release, err := shared(pendingPools, name, func() (pooled[*gateway.PendingOrders], error) {
		return pooled[*gateway.PendingOrders]{&gateway.PendingOrders{}, func() error { return nil }}, nil
	})
	return p.v, release, err
}

// sharedCounter returns the in-memory rate limit counts of the gateway
// named name, kept across config reloads so that a reload does not reset
// them, and the function that releases them.
func sharedCounter(name string, now func() time.Time) (*gateway.MemoryCounter, func() error, error) {
	p, release, err := shared(rateCounters, name, func() (pooled[*gateway.MemoryCounter], error) {
		return pooled[*gateway.MemoryCounter]{gateway.NewMemoryCounter(now), func() error { return nil }}, nil
	})
	return p.v, release, err
}

// startJanitor starts deleting, in the background, the orders and
// authorizations of s that expired unfinished (see package janitor). It
// runs as long as s is open: where s is kept across config reloads, it is
// too, so one janitor serves each store. Stop it before closing s.
func startJanitor(ctx caddy.Context, s storage.Expirer) *janitor.Janitor {
	return janitor.Start(s, janitor.Options{Logger: ctx.Slogger()})
}
