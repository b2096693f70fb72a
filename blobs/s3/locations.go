package s3

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxLocations bounds the locations remembered: about 10 MiB of them.
const maxLocations = 1 << 16

// location is where a blob's bytes were found, and for which incarnation
// of its record (0: unknown, found without one); with the last URL signed
// for it, handed out again while at least half its lifetime is left (a
// signature costs more than the rest of a redirected GET).
type location struct {
	ix  index
	inc int64
	// recorded: ix.Object came from the blob's record (PresignGetIncarnation's
	// obj), without its size, so Open does not use it.
	recorded bool

	url    string
	urlTTL time.Duration
	signed time.Time
}

// reusable reports whether loc's URL, signed for ttl, may be handed out
// at now: at least half of its lifetime left.
func (loc location) reusable(ttl time.Duration, now time.Time) bool {
	return loc.url != "" && loc.urlTTL == ttl && !now.Before(loc.signed) && now.Before(loc.signed.Add(ttl/2))
}

// locations remembers which data object holds a blob, so that a pull
// reads the blob's index only the first time. It says where a blob's
// bytes were, never that the blob exists: whether it does is the
// database's answer, asked before any Open or presign.
//
// A data object never changes and holds only verified bytes of its digest,
// so a location is either right or names an object that is gone. Open
// finds the latter (404) before it sends a byte and reads the index again.
// A presigned URL cannot be checked so: PresignGetIncarnation trusts a
// location only when it was found for the incarnation it is asked for.
// For one incarnation (one record's lifetime) the index and the data
// object never change, and an incarnation, once gone, is never asked for
// again by a request that has not read it from the database before it
// went; so such a location is right.
type locations struct {
	mu sync.Mutex
	m  map[digest.Digest]location
}

func (l *locations) get(d digest.Digest) (location, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	loc, ok := l.m[d]
	return loc, ok
}

func (l *locations) put(d digest.Digest, loc location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[digest.Digest]location{}
	}
	if len(l.m) >= maxLocations {
		for k := range l.m { // any one: map order is random
			delete(l.m, k)
			break
		}
	}
	l.m[d] = loc
}

func (l *locations) drop(d digest.Digest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, d)
}
