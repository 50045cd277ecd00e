package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// adjustableClock is a clock that tests move by hand; safe for concurrent use.
type adjustableClock struct {
	mu  sync.Mutex
	now time.Time
}

func newAdjustableClock(start time.Time) *adjustableClock { return &adjustableClock{now: start} }

func (c *adjustableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *adjustableClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const testNonceLifetime = 10 * time.Minute

func newTestNonceStore(t *testing.T, maxUsed int, clock *adjustableClock) *NonceStore {
	t.Helper()
	n, err := NewNonceStore(testNonceLifetime, maxUsed, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustNonce(t *testing.T, n *NonceStore) string {
	t.Helper()
	nonce, err := n.NewNonce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return nonce
}

func redeem(n *NonceStore, nonce string) error { return n.RedeemNonce(context.Background(), nonce) }

func wantRefused(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("%s: got %v, want storage.ErrNotFound", what, err)
	}
}

// flipChar replaces the character at i with another base64url character.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestNonce_FreshRedeemsOnceThenReplayIsRefused(t *testing.T) {
	n := newTestNonceStore(t, 100, newAdjustableClock(stateNow))
	nonce := mustNonce(t, n)
	if err := redeem(n, nonce); err != nil {
		t.Fatalf("fresh nonce refused: %v", err)
	}
	wantRefused(t, redeem(n, nonce), "replayed nonce")
}

func TestNonce_NoncesAreDistinct(t *testing.T) {
	n := newTestNonceStore(t, 100, newAdjustableClock(stateNow))
	seen := map[string]bool{}
	for range 50 {
		nonce := mustNonce(t, n)
		if seen[nonce] {
			t.Fatalf("nonce %s issued twice", nonce)
		}
		seen[nonce] = true
	}
}

func TestNonce_Lifetime(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration
		refused bool
	}{
		{"used at once is accepted", 0, false},
		{"used at the end of its lifetime is accepted", testNonceLifetime, false},
		{"used one second past its lifetime is refused", testNonceLifetime + time.Second, true},
		{"used an hour late is refused", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newAdjustableClock(stateNow)
			n := newTestNonceStore(t, 100, clock)
			nonce := mustNonce(t, n)
			clock.Advance(tt.wait)
			err := redeem(n, nonce)
			if tt.refused {
				wantRefused(t, err, "expired nonce")
			} else if err != nil {
				t.Fatalf("nonce refused after %s: %v", tt.wait, err)
			}
		})
	}
}

func TestNonce_MalformedOrTamperedIsRefused(t *testing.T) {
	n := newTestNonceStore(t, 100, newAdjustableClock(stateNow))
	nonce := mustNonce(t, n)
	// Characters 0-20 hold the encrypted counter and issue time, 22-42
	// the MAC; character 21 holds bits of both.
	tests := []struct {
		name  string
		nonce string
	}{
		{"first character flipped", flipChar(nonce, 0)},
		{"encrypted block flipped", flipChar(nonce, 15)},
		{"character across block and MAC flipped", flipChar(nonce, 21)},
		{"MAC flipped", flipChar(nonce, 30)},
		{"empty", ""},
		{"truncated", nonce[:len(nonce)-1]},
		{"extended", nonce + "A"},
		{"padded", nonce + "="},
		{"standard base64 alphabet", "+/" + nonce[2:]},
		{"not base64", "!!!" + nonce[3:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefused(t, redeem(n, tt.nonce), tt.name)
		})
	}
	// None of the refusals above may have used the genuine nonce up.
	if err := redeem(n, nonce); err != nil {
		t.Fatalf("genuine nonce refused after tampered copies: %v", err)
	}
}

// TestNonce_TrailingBitsAreNotMalleable: a nonce has exactly one spelling.
// The last of its 43 characters carries 4 bits of data and 2 padding bits,
// which non-strict base64 ignores ("...k" to "...n" would decode alike);
// strict decoding refuses strings the server never issued (RFC 8555 §6.5).
func TestNonce_TrailingBitsAreNotMalleable(t *testing.T) {
	n := newTestNonceStore(t, 100, newAdjustableClock(stateNow))
	nonce := mustNonce(t, n)
	last := len(nonce) - 1
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		if alphabet[i] == nonce[last] {
			continue
		}
		alt := nonce[:last] + alphabet[i:i+1]
		if err := redeem(n, alt); err == nil {
			t.Fatalf("nonce %s was redeemed as %s (non-strict base64 decoding)", nonce, alt)
		}
	}
}

func TestNonce_FromAnotherStoreIsRefused(t *testing.T) {
	clock := newAdjustableClock(stateNow)
	a := newTestNonceStore(t, 100, clock)
	b := newTestNonceStore(t, 100, clock)
	// Both stores count from 1, so only the key tells their nonces apart.
	wantRefused(t, redeem(b, mustNonce(t, a)), "nonce of another store")
}

func TestNonce_NeverIssuedCounterIsRefused(t *testing.T) {
	clock := newAdjustableClock(stateNow)
	n := newTestNonceStore(t, 100, clock)
	mustNonce(t, n) // counter 1; next is 2
	// The forgery works: a counter that was issued redeems.
	if err := redeem(n, forgeNonce(n, 1, clock.Now())); err != nil {
		t.Fatalf("forged nonce for issued counter 1 refused: %v", err)
	}
	// Counter 0 is never issued: it is the initial value of earliest.
	for _, c := range []uint64{0, 2, 3, 1 << 40} {
		wantRefused(t, redeem(n, forgeNonce(n, c, clock.Now())), fmt.Sprintf("counter %d never issued", c))
	}
}

// forgeNonce makes a nonce with the store's own keys, as NewNonce does, for
// any counter and issue time.
func forgeNonce(n *NonceStore, counter uint64, issued time.Time) string {
	var buf [nonceLen]byte
	binary.BigEndian.PutUint64(buf[0:8], counter)
	binary.BigEndian.PutUint64(buf[8:16], uint64(issued.Unix()))
	n.block.Encrypt(buf[:16], buf[:16])
	copy(buf[16:], n.mac(buf[:16]))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

func TestNonce_MemoryIsBoundedAndForgottenCountersStayRefused(t *testing.T) {
	const maxUsed = 3
	n := newTestNonceStore(t, maxUsed, newAdjustableClock(stateNow))
	nonces := make([]string, 10)
	for i := range nonces {
		nonces[i] = mustNonce(t, n) // counters 1..10
	}
	// Redeem counters 2..9, leaving 1 and 10 outstanding.
	for i := 1; i < 9; i++ {
		if err := redeem(n, nonces[i]); err != nil {
			t.Fatalf("nonce %d refused: %v", i+1, err)
		}
		n.mu.Lock()
		used, heapLen := len(n.used), n.usedHeap.Len()
		n.mu.Unlock()
		if used > maxUsed || heapLen > maxUsed {
			t.Fatalf("after %d redemptions %d counters (heap %d) remembered, want at most %d", i, used, heapLen, maxUsed)
		}
	}
	n.mu.Lock()
	earliest := n.earliest
	n.mu.Unlock()
	// Counters 2..9 were redeemed; 7..9 are remembered, 2..6 forgotten.
	if earliest != 6 {
		t.Fatalf("earliest = %d, want 6", earliest)
	}
	wantRefused(t, redeem(n, nonces[0]), "outstanding nonce below earliest")
	for i := 1; i < 9; i++ {
		wantRefused(t, redeem(n, nonces[i]), "replay of a redeemed nonce, forgotten or not")
	}
	if err := redeem(n, nonces[9]); err != nil {
		t.Fatalf("outstanding nonce above earliest refused: %v", err)
	}
}

func TestNonce_ConcurrentEachNonceRedeemsExactlyOnce(t *testing.T) {
	const (
		issuers    = 16
		perIssuer  = 200
		redeemers  = 8
		total      = issuers * perIssuer
		maxUsedBig = 2 * total // no eviction: every nonce must redeem once
	)
	for _, tc := range []struct {
		name    string
		maxUsed int
		exact   bool
	}{
		{"without eviction exactly once", maxUsedBig, true},
		{"with eviction at most once", total / 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNonceStore(t, tc.maxUsed, newAdjustableClock(stateNow))
			nonces := make([]string, total)
			var wg sync.WaitGroup
			var issueErrs atomic.Int64
			for g := range issuers {
				wg.Go(func() {
					for i := range perIssuer {
						s, err := n.NewNonce(context.Background())
						if err != nil {
							issueErrs.Add(1)
						}
						nonces[g*perIssuer+i] = s
					}
				})
			}
			wg.Wait()
			if issueErrs.Load() != 0 {
				t.Fatalf("%d NewNonce errors", issueErrs.Load())
			}
			redeemed := make([]atomic.Int32, total)
			for r := range redeemers {
				wg.Go(func() {
					// Each redeemer walks the nonces from its own offset,
					// so that they collide on every nonce.
					for i := range total {
						j := (i + r*total/redeemers) % total
						if redeem(n, nonces[j]) == nil {
							redeemed[j].Add(1)
						}
					}
				})
			}
			wg.Wait()
			for i := range redeemed {
				got := redeemed[i].Load()
				if got > 1 || (tc.exact && got != 1) {
					t.Fatalf("nonce %d redeemed %d times", i, got)
				}
			}
		})
	}
}
