package auth

import (
	"sync"
	"time"
)

// okCache remembers (user, sha256 of password) pairs that passed bcrypt,
// each for ttl, at most size of them.
type okCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	expires map[string]time.Time
}

func newOKCache(ttl time.Duration, size int, now func() time.Time) *okCache {
	return &okCache{ttl: ttl, size: size, now: now, expires: map[string]time.Time{}}
}

func (c *okCache) hit(key string) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.expires[key]
	if !ok {
		return false
	}
	if !c.now().Before(exp) {
		delete(c.expires, key)
		return false
	}
	return true
}

func (c *okCache) add(key string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.expires) >= c.size {
		for k, exp := range c.expires {
			if !now.Before(exp) {
				delete(c.expires, k)
			}
		}
	}
	// Still full: forget an arbitrary entry (its user pays one more bcrypt).
	for k := range c.expires {
		if len(c.expires) < c.size {
			break
		}
		delete(c.expires, k)
	}
	c.expires[key] = now.Add(c.ttl)
}

func (c *okCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.expires)
}
