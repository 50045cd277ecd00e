package gateway

import (
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// The functions here compute the status a client sees from what is stored
// and the time (RFC 8555 §7.1.6). They change nothing: stored statuses move
// only by the transitions of transitions.go, stored by compare-and-swap in
// the handlers.

// authzStatus is an authorization's status at now: a pending or valid one
// whose expiry has passed is expired.
func authzStatus(a *storage.Authorization, now time.Time) string {
	switch a.Status {
	case storage.StatusPending, storage.StatusValid:
		if !now.Before(a.Expires) {
			return storage.StatusExpired
		}
	}
	return a.Status
}

// orderStatus is an order's status at now, given the current statuses of
// its authorizations. A pending order becomes ready when every
// authorization is valid, and invalid when one cannot become valid any
// more or the order itself expired.
func orderStatus(o *storage.Order, authzStatuses []string, now time.Time) string {
	switch o.Status {
	case storage.StatusPending, storage.StatusReady:
	default:
		return o.Status
	}
	if !now.Before(o.Expires) {
		return storage.StatusInvalid
	}
	allValid := true
	for _, s := range authzStatuses {
		switch s {
		case storage.StatusValid:
		case storage.StatusPending:
			allValid = false
		default: // invalid, deactivated, expired, revoked
			return storage.StatusInvalid
		}
	}
	if allValid {
		return storage.StatusReady
	}
	return storage.StatusPending
}
