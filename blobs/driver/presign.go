package driver

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Presigner is a driver that can hand out a URL of a blob's bytes, so that
// a client reads them from the storage itself rather than through kvreg.
// It is optional: a driver without it serves bytes through Open only.
type Presigner interface {
	// PresignGet returns a URL that answers GET (and Range GET) with the
	// bytes of blob d, as Content-Type application/octet-stream, for ttl
	// from now and no longer; or ErrNotFound for a blob the driver has
	// not. It signs; it does not fetch the bytes.
	PresignGet(d digest.Digest, ttl time.Duration) (string, error)
}

// IncarnationPresigner is a Presigner that can presign from what it
// remembers of one incarnation of a blob, or from the location recorded
// with it, with no request. The caller names the incarnation: a nonzero
// value that the database gives the blob's record when it is made and
// that is new at each re-creation, so that while it is the same the
// blob's bytes stay where they were stored. It is optional.
type IncarnationPresigner interface {
	// PresignGetIncarnation is PresignGet for incarnation inc of blob d
	// (0: unknown, as PresignGet), whose bytes are at loc, as
	// LocatingPromoter gave it when the incarnation's upload was promoted
	// ("": not known, the driver finds them).
	PresignGetIncarnation(d digest.Digest, inc int64, loc string, ttl time.Duration) (string, error)
}
