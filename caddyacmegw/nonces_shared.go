package caddyacmegw

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

// maxRedeemedNonces bounds the memory of redeemed nonces per gateway.
const maxRedeemedNonces = 100_000

// nonceStores keeps each gateway's in-memory nonces across config reloads,
// so that a reload does not turn every outstanding nonce bad.
var nonceStores = caddy.NewUsagePool()

type pooledNonces struct{ *nonceStore }

func (pooledNonces) Destruct() error { return nil }

// sharedNonces returns the in-memory nonce store of the gateway named name
// and the function that releases it.
func sharedNonces(name string, lifetime time.Duration, now func() time.Time) (*nonceStore, func() error, error) {
	v, _, err := nonceStores.LoadOrNew(name, func() (caddy.Destructor, error) {
		n, err := newNonceStore(lifetime, maxRedeemedNonces, now)
		if err != nil {
			return nil, err
		}
		return pooledNonces{n}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	n := v.(pooledNonces).nonceStore
	n.setLifetime(lifetime) // a reload may change it
	release := func() error {
		_, err := nonceStores.Delete(name)
		return err
	}
	return n, release, nil
}
