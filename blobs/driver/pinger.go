package driver

import "context"

// Pinger is a driver whose storage is remote: Ping asks it once, without
// retries, whether it answers now (readiness). An error wraps
// ErrUnavailable. A driver over a local directory has no need of it.
type Pinger interface {
	Ping(ctx context.Context) error
}
