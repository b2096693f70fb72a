package s3

import (
	"context"
	"sync"

	"github.com/aws/smithy-go/middleware"
	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.RequestCounter = (*Driver)(nil)

// requestCounts counts the requests the driver's client sends, by S3
// operation (PutObject, UploadPart, HeadObject, ...).
type requestCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// middleware adds the count at the end of the finalize step: after the
// retry loop, so that each attempt counts, and after signing. A presign
// never gets there (its own finalize step stops the request), so presigned
// URLs, which clients fetch themselves, are not counted.
func (c *requestCounts) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kvregRequestCount",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.add(middleware.GetOperationName(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// add counts one request of op.
func (c *requestCounts) add(op string) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
}

// Requests returns the requests sent to the bucket so far, by S3 operation.
func (d *Driver) Requests() map[string]uint64 {
	d.requests.mu.Lock()
	defer d.requests.mu.Unlock()
	out := make(map[string]uint64, len(d.requests.n))
	for op, n := range d.requests.n {
		out[op] = n
	}
	return out
}
