package blobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// ErrNoPresign: the storage under the store cannot hand out URLs of blobs'
// bytes (the directory driver has no URL a client could fetch).
var ErrNoPresign = errors.New("blobs: the blob store cannot presign URLs of blobs (an S3 bucket can)")

// CanPresign reports whether PresignGet can work on this store's driver.
func (s *Store) CanPresign() bool {
	_, ok := s.drv.(driver.Presigner)
	return ok
}

// PresignGet returns a URL that serves blob d's bytes straight from the
// storage for ttl: ErrNoPresign when the driver cannot, ErrNotFound for a
// blob it does not hold. The caller has decided the blob may be read.
// inc is the incarnation of d's record (0: unknown) and loc the location
// recorded with it (Commit's record; "": unknown), which let a driver
// presign without a request (driver.IncarnationPresigner).
func (s *Store) PresignGet(d digest.Digest, inc int64, loc string, ttl time.Duration) (string, error) {
	p, ok := s.drv.(driver.Presigner)
	if !ok {
		return "", fmt.Errorf("%w: %T", ErrNoPresign, s.drv)
	}
	var u string
	var err error
	if ip, ok := s.drv.(driver.IncarnationPresigner); ok && inc != 0 {
		u, err = ip.PresignGetIncarnation(d, inc, loc, ttl)
	} else {
		u, err = p.PresignGet(d, ttl)
	}
	return u, notFound(err, d)
}
