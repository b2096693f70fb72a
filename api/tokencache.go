package api

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/kvreg/kvreg/api/auth/token"
)

// tokenCache remembers the claims of tokens that verified, by the sha256
// of the raw token, until each token's exp, at most size of them: a push
// sends the same token with each of its many requests, and checking a
// signature costs tens of microseconds. Only successes are kept, so a
// forged token is checked (and refused) every time.
type tokenCache struct {
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]token.Claims
}

func newTokenCache(size int, now func() time.Time) *tokenCache {
	return &tokenCache{size: size, now: now, entries: map[[sha256.Size]byte]token.Claims{}}
}

func (c *tokenCache) get(raw string) (token.Claims, bool) {
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.entries[k]
	if !ok {
		return token.Claims{}, false
	}
	if !c.now().Before(cl.Expires) {
		delete(c.entries, k)
		return token.Claims{}, false
	}
	return cl, true
}

func (c *tokenCache) add(raw string, cl token.Claims) {
	now := c.now()
	if !now.Before(cl.Expires) {
		return
	}
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, e := range c.entries {
			if !now.Before(e.Expires) {
				delete(c.entries, k)
			}
		}
	}
	// Still full: forget arbitrary entries (their tokens are checked again).
	for k := range c.entries {
		if len(c.entries) < c.size {
			break
		}
		delete(c.entries, k)
	}
	c.entries[k] = cl
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
