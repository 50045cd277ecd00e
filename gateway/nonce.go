package gateway

import (
	"container/heap"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// nonceLen is the decoded size of a nonce: counter, issue time, MAC.
const nonceLen = 8 + 8 + 16

// NonceStore issues nonces for one gateway process without storing them:
// a nonce carries a counter and its issue time, encrypted (so that it does
// not tell how many requests the gateway serves) and under an HMAC, so only
// the counters that were redeemed need remembering. Memory stays bounded: when
// more than maxUsed counters are remembered, the lowest is forgotten and
// every counter at or below it is refused from then on (as Boulder does).
type NonceStore struct {
	block    cipher.Block
	key      []byte
	lifetime time.Duration
	maxUsed  int
	now      func() time.Time

	mu       sync.Mutex
	next     uint64 // counter of the next nonce issued
	earliest uint64 // counters at or below it are refused
	used     map[uint64]struct{}
	usedHeap counterHeap
}

// NewNonceStore makes a NonceStore whose nonces are good for lifetime,
// remembering at most maxUsed redeemed counters.
func NewNonceStore(lifetime time.Duration, maxUsed int, now func() time.Time) (*NonceStore, error) {
	key := make([]byte, 32+16)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key[32:])
	if err != nil {
		return nil, err
	}
	return &NonceStore{
		block:    block,
		key:      key[:32],
		lifetime: lifetime,
		maxUsed:  maxUsed,
		now:      now,
		next:     1,
		used:     make(map[uint64]struct{}),
	}, nil
}

// NewNonce implements storage.Nonces.
func (n *NonceStore) NewNonce(context.Context) (string, error) {
	n.mu.Lock()
	c := n.next
	n.next++
	n.mu.Unlock()

	var buf [nonceLen]byte
	binary.BigEndian.PutUint64(buf[0:8], c)
	binary.BigEndian.PutUint64(buf[8:16], uint64(n.now().Unix()))
	n.block.Encrypt(buf[:16], buf[:16])
	copy(buf[16:], n.mac(buf[:16]))
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

// RedeemNonce implements storage.Nonces.
func (n *NonceStore) RedeemNonce(_ context.Context, nonce string) error {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceLen {
		return storage.ErrNotFound
	}
	var buf [nonceLen]byte
	// Strict: a nonce has one spelling, not four (the last character's
	// unused bits).
	if _, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(nonce)); err != nil {
		return storage.ErrNotFound
	}
	if !hmac.Equal(buf[16:], n.mac(buf[:16])) {
		return storage.ErrNotFound
	}
	n.block.Decrypt(buf[:16], buf[:16])
	issued := time.Unix(int64(binary.BigEndian.Uint64(buf[8:16])), 0)
	c := binary.BigEndian.Uint64(buf[0:8])

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.now().Sub(issued) > n.lifetime {
		return storage.ErrNotFound
	}
	if c <= n.earliest || c >= n.next {
		return storage.ErrNotFound
	}
	if _, seen := n.used[c]; seen {
		return storage.ErrNotFound
	}
	n.used[c] = struct{}{}
	heap.Push(&n.usedHeap, c)
	for len(n.used) > n.maxUsed {
		low := heap.Pop(&n.usedHeap).(uint64)
		delete(n.used, low)
		n.earliest = low
	}
	return nil
}

func (n *NonceStore) mac(b []byte) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write(b)
	return h.Sum(nil)[:16]
}

// SetLifetime changes how long new and outstanding nonces are good for.
func (n *NonceStore) SetLifetime(d time.Duration) {
	n.mu.Lock()
	n.lifetime = d
	n.mu.Unlock()
}

// counterHeap is a min-heap of redeemed counters.
type counterHeap []uint64

func (h counterHeap) Len() int           { return len(h) }
func (h counterHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h counterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *counterHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *counterHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var _ storage.Nonces = (*NonceStore)(nil)
