package caddyacmegw

import "time"

// maxRedeemedNonces bounds the memory of redeemed nonces per gateway.
const maxRedeemedNonces = 100_000

// Destruct implements caddy.Destructor: nothing to release.
func (*nonceStore) Destruct() error { return nil }

// sharedNonces returns the in-memory nonce store of the gateway named name,
// kept across config reloads so that a reload does not turn every
// outstanding nonce bad, and the function that releases it.
func sharedNonces(name string, lifetime time.Duration, now func() time.Time) (*nonceStore, func() error, error) {
	n, release, err := shared(nonceStores, name, func() (*nonceStore, error) {
		return newNonceStore(lifetime, maxRedeemedNonces, now)
	})
	if err != nil {
		return nil, nil, err
	}
	n.setLifetime(lifetime) // a reload may change it
	return n, release, nil
}
