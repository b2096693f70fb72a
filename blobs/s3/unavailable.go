package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/kvreg/kvreg/blobs/driver"
)

// markUnavailable wraps, outside the retries, the errors that mean the
// server could not be reached or kept failing on its side (5xx after
// every attempt) with driver.ErrUnavailable, so that callers tell an
// outage from a refusal without knowing the SDK.
func markUnavailable(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("KvregUnavailable",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil && unreachable(err) {
				err = fmt.Errorf("%w: %w", driver.ErrUnavailable, err)
			}
			return out, md, err
		}), middleware.Before)
}

// unreachable: no answer (refused, reset, cut, timed out) or a 5xx.
func unreachable(err error) bool {
	// The SDK's answers and those of requests sent directly (direct.go)
	// both carry their status.
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		// Status 0: the request was never answered.
		return re.HTTPStatusCode() == 0 || re.HTTPStatusCode() >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// Ping asks the bucket once, without retries, whether it answers: for a
// readiness probe, which must not wait out the backoff.
func (d *Driver) Ping(ctx context.Context) error {
	_, err := d.c.HeadBucket(ctx, &s3api.HeadBucketInput{Bucket: &d.bucket}, func(o *s3api.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		// The server answers: learn now, before the first push, whether
		// it honours conditional writes (once per process).
		d.honoured(ctx)
		return nil
	}
	if errors.Is(err, driver.ErrUnavailable) {
		return err
	}
	// Any other answer (403 from a policy without s3:ListBucket, say)
	// comes from a server that is there: readiness is about reaching it.
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", driver.ErrUnavailable, err)
}

var _ driver.Pinger = (*Driver)(nil)
