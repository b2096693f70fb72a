package s3

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// maxLocations bounds the locations remembered: about 10 MiB of them.
const maxLocations = 1 << 16

// locations remembers which data object holds a blob, so that a pull
// reads the blob's index only the first time. It says where a blob's
// bytes were, never that the blob exists: whether it does is the
// database's answer, asked before any Open. A data object never changes
// and holds only verified bytes of its digest, so a location is either
// right or names an object that is gone, which the read that follows
// finds (404) before it sends a byte; the index is then read again.
type locations struct {
	mu sync.Mutex
	m  map[digest.Digest]index
}

func (l *locations) get(d digest.Digest) (index, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ix, ok := l.m[d]
	return ix, ok
}

func (l *locations) put(d digest.Digest, ix index) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[digest.Digest]index{}
	}
	if len(l.m) >= maxLocations {
		for k := range l.m { // any one: map order is random
			delete(l.m, k)
			break
		}
	}
	l.m[d] = ix
}

func (l *locations) drop(d digest.Digest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, d)
}
