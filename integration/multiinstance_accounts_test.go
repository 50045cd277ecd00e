package integration

import (
	"crypto/ecdsa"
	"net/http"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Each instance keeps the accounts it read in memory. A change made through
// one instance reaches the other: a key rolled over through one is accepted
// by both at once (an instance that holds the old key reads the account
// again when a signature fails), and the old key, or the account once
// deactivated, is refused by both within moments.
func TestMultiInstance_AccountChangesReachTheOtherInstance(t *testing.T) {
	e := startTwoInstances(t)
	c, _ := acmezClient(e.Front, acme.ChallengeTypeDNS01)
	acct := acmezAccount(t, c)
	hc := e.Front.G.HTTPClient()

	// post sends a request to the account URL at instance i, signed with key.
	post := func(i int, key *ecdsa.PrivateKey, payload string) rawResponse {
		t.Helper()
		nonce, err := freshNonce(hc, e.Instances[i]+"/new-nonce")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := postBody(t.Context(), hc, e.direct(i, acct.Location), signJWS(t, key, acct.Location, nonce, acct.Location, []byte(payload)))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// refusedByBoth waits until both instances refuse key with problem typ.
	refusedByBoth := func(key *ecdsa.PrivateKey, typ, what string) {
		t.Helper()
		for i := range e.Instances {
			deadline := time.Now().Add(2 * time.Second)
			for {
				r := post(i, key, "")
				if r.Status >= 400 && problemType(r.Body) == "urn:ietf:params:acme:error:"+typ {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("instance %d, 2 s after %s: HTTP %d %s, want %s", i, what, r.Status, r.Body, typ)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	oldKey := acct.PrivateKey.(*ecdsa.PrivateKey)
	for i := range e.Instances {
		if r := post(i, oldKey, ""); r.Status != http.StatusOK {
			t.Fatalf("instance %d: HTTP %d %s", i, r.Status, r.Body)
		}
	}

	newK := newKey(t)
	acct, err := c.AccountKeyRollover(t.Context(), acct, newK)
	if err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	for i := range e.Instances {
		if r := post(i, newK, ""); r.Status != http.StatusOK {
			t.Fatalf("instance %d right after the rollover, new key: HTTP %d %s", i, r.Status, r.Body)
		}
	}
	refusedByBoth(oldKey, "malformed", "the rollover, the old key")

	if r := post(0, newK, `{"status":"deactivated"}`); r.Status != http.StatusOK {
		t.Fatalf("deactivating: HTTP %d %s", r.Status, r.Body)
	}
	refusedByBoth(newK, "unauthorized", "the deactivation")
}
