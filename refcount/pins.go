package refcount

import (
	"sync"

	"github.com/kvreg/kvreg/kv"
)

// pinKey names a pin: an object, and for pin rows the client that was
// told "exists" (api's client: the user, else the remote address). Pins in
// memory count the answers of every client in one pin and ignore it.
type pinKey struct {
	kind   kv.LeaseKind
	repo   string
	digest string
	client string
}

// object is the key of the pin in memory: the object alone.
func (k pinKey) object() pinKey {
	k.client = ""
	return k
}

type pin struct {
	until int64 // Unix ns
	count int   // answers of "exists" not yet followed by a manifest
}

// pins are short holds kept in memory, so that a HEAD stays a read-only
// transaction. Each answer of "exists" adds one; each manifest that then
// references the object takes one. A pin matters only if the object's last
// edge goes while it is live: the cascade then turns it into a lease.
type pins struct {
	mu sync.Mutex
	m  map[pinKey]pin
}

func (p *pins) add(k pinKey, until int64) {
	k = k.object()
	p.mu.Lock()
	if p.m == nil {
		p.m = map[pinKey]pin{}
	}
	v := p.m[k]
	v.count++
	if v.until < until {
		v.until = until
	}
	p.m[k] = v
	p.mu.Unlock()
}

// live reports whether a pin holds the object at now.
func (p *pins) live(k pinKey, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k.object()]
	return ok && v.until > now
}

// take lets one manifest take over one pin of each key.
func (p *pins) take(keys []pinKey) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		k = k.object()
		if v, ok := p.m[k]; ok {
			if v.count--; v.count <= 0 {
				delete(p.m, k)
			} else {
				p.m[k] = v
			}
		}
	}
	p.mu.Unlock()
}

// drop forgets pins whatever their count (the object was deleted on purpose).
func (p *pins) drop(k pinKey) {
	p.mu.Lock()
	delete(p.m, k.object())
	p.mu.Unlock()
}

// peek returns a live pin. A transaction that turns it into a lease
// forgets it only after commit: a batched transaction may run twice.
func (p *pins) peek(k pinKey, now int64) (pin, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k.object()]
	if !ok || v.until <= now {
		return pin{}, false
	}
	return v, true
}

// expire forgets pins that ended at or before now.
func (p *pins) expire(now int64) {
	p.mu.Lock()
	for k, v := range p.m {
		if v.until <= now {
			delete(p.m, k)
		}
	}
	p.mu.Unlock()
}
