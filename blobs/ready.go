package blobs

import (
	"context"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
)

// readyWithin bounds a readiness probe of remote storage: a health check
// must answer before the balancer's own timeout.
const readyWithin = 2 * time.Second

// Ready reports whether the storage answers now: nil for a driver with
// nothing remote to ask (driver.Pinger), else an error wrapping
// ErrUnavailable when it does not.
func (s *Store) Ready() error {
	p, ok := s.drv.(driver.Pinger)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyWithin)
	defer cancel()
	return p.Ping(ctx)
}
