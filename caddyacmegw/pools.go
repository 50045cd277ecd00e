package caddyacmegw

import "github.com/caddyserver/caddy/v2"

// Usage pools keep what a gateway holds in memory across config reloads:
// the new handler takes the old one's before the old one lets go.
var (
	nonceStores     = caddy.NewUsagePool() // by gateway name
	validationPools = caddy.NewUsagePool() // by gateway name and limit
	pendingPools    = caddy.NewUsagePool() // by gateway name
	memoryStores    = caddy.NewUsagePool() // by gateway name
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
