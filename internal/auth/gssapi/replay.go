package gssapi

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers the authenticators this process accepted, for as
// long as they could pass the clock-skew check, so a captured AP-REQ cannot
// be presented twice. It is keyed, as MIT's is since 1.18, by a hash of
// the authenticator's ciphertext rather than by (client, time), so two
// connections of one principal in the same microsecond are not mistaken
// for a replay. Only authenticators that decrypted are added, so its size
// is bounded by the real handshakes in a skew window.
type replayCache struct {
	mu    sync.Mutex
	seen  map[[32]byte]time.Time // → expiry
	swept time.Time
}

// replays is shared by every Mechanism of the process, so a reload (which
// builds a new Mechanism) does not forget what was seen.
var replays = &replayCache{seen: map[[32]byte]time.Time{}}

// check records ciphertext and reports whether it was seen before.
func (c *replayCache) check(ciphertext []byte, now time.Time, keep time.Duration) (replay bool) {
	h := sha256.Sum256(ciphertext)
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > time.Minute {
		for k, exp := range c.seen {
			if now.After(exp) {
				delete(c.seen, k)
			}
		}
		c.swept = now
	}
	if exp, ok := c.seen[h]; ok && now.Before(exp) {
		return true
	}
	c.seen[h] = now.Add(keep)
	return false
}
