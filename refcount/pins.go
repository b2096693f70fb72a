package refcount

import (
	"sync"

	"github.com/kvreg/kvreg/kv"
)

type pinKey struct {
	kind   kv.LeaseKind
	repo   string
	digest string
}

// pins are short holds kept in memory, so that a HEAD stays a read-only
// transaction. A pin matters only if the object's last edge goes while it
// is live: the cascade then writes a lease in its place.
type pins struct {
	mu sync.Mutex
	m  map[pinKey]int64 // expiry, Unix ns
}

func (p *pins) add(k pinKey, until int64) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[pinKey]int64{}
	}
	if p.m[k] < until {
		p.m[k] = until
	}
	p.mu.Unlock()
}

// live returns the pin's expiry if it is later than now.
func (p *pins) live(k pinKey, now int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.m[k]
	return exp, ok && exp > now
}

func (p *pins) drop(keys []pinKey) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		delete(p.m, k)
	}
	p.mu.Unlock()
}

// expire forgets pins that ended at or before now.
func (p *pins) expire(now int64) {
	p.mu.Lock()
	for k, exp := range p.m {
		if exp <= now {
			delete(p.m, k)
		}
	}
	p.mu.Unlock()
}

func (p *pins) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
