package s3

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/kvreg/kvreg/blobs/driver"
)

// The driver's most frequent requests, a small object's GET, PUT and
// DELETE (an upload's state, segments and data object written whole, a
// blob's index), are built, signed and sent here rather than through the
// SDK: its middleware stack (endpoint rules, checksum setup, retry
// bookkeeping, a signer built per request) cost more CPU than the
// request itself, a sixth of a replica's samples over a push. They go to
// the bucket URL the SDK resolved once (presignBase), over the SDK's own
// HTTP client (one connection pool), signed by the SDK's SigV4 signer,
// with the SDK's retryer deciding which failures to retry and how long to
// wait; their errors answer the same questions as the SDK's
// (smithy.APIError's code, the HTTP status), so that notFound,
// preconditionFailed and unreachable read both. Other operations, rarer
// or with more to them (multipart uploads, listings, copies, HEADs), stay
// with the SDK.

// emptySum is the sha256 of an empty payload: the signed payload of a GET
// or DELETE.
const emptySum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxErrorBody bounds what is read of an error's body.
const maxErrorBody = 64 << 10

// statusError is the server's refusal of a request sent here: its HTTP
// status, and the code and message of its XML error body, if any.
type statusError struct {
	op      string
	status  int
	code    string
	message string
}

var _ smithy.APIError = (*statusError)(nil)

func (e *statusError) Error() string {
	return fmt.Sprintf("s3 %s: status %d, %s: %s", e.op, e.status, e.code, e.message)
}

// HTTPStatusCode is what httpStatus and the retryer read.
func (e *statusError) HTTPStatusCode() int { return e.status }

// ErrorCode is S3's code (NoSuchKey, PreconditionFailed, SlowDown, ...),
// or, for a body with none (a HEAD, a server that sends none), one named
// after the status where S3 has one.
func (e *statusError) ErrorCode() string    { return e.code }
func (e *statusError) ErrorMessage() string { return e.message }
func (e *statusError) ErrorFault() smithy.ErrorFault {
	if e.status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// refusal reads a response of status 300 or more into a statusError.
func refusal(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	xml.Unmarshal(b, &body) //nolint:errcheck // a body that does not parse names no code
	e := &statusError{op: op, status: resp.StatusCode, code: body.Code, message: body.Message}
	if e.code == "" {
		switch resp.StatusCode {
		case http.StatusNotFound:
			e.code = "NotFound"
		case http.StatusPreconditionFailed:
			e.code = "PreconditionFailed"
		}
	}
	if e.message == "" {
		e.message = http.StatusText(resp.StatusCode)
	}
	return e
}

// request is one request sent here: its operation's name (as the SDK
// names it, for Requests), method, key, payload with its sha256 (nil for
// none) and extra headers.
type request struct {
	op     string
	method string
	key    string
	body   []byte
	sum    []byte
	header http.Header
}

// send sends rq, attempt after attempt while the retryer says the failure
// is worth one more and attempts are left, and gives the body of an
// answer of status 2xx to a GET (at most maxSmall bytes; other answers'
// bodies are drained); any other answer is a statusError. A GET's body
// cut short fails its attempt as a request that got no answer, so that
// one count of attempts covers both. A failure that means the server
// cannot be reached is driver.ErrUnavailable too, as markUnavailable
// makes the SDK's.
func (d *Driver) send(ctx context.Context, rq request) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		b, err := d.sendOnce(ctx, rq)
		if err == nil {
			return b, nil
		}
		if attempt >= d.retryer.MaxAttempts() || !d.retryer.IsErrorRetryable(err) || ctx.Err() != nil {
			if unreachable(err) {
				err = fmt.Errorf("%w: %s: %w", driver.ErrUnavailable, rq.key, err)
			}
			return nil, err
		}
		wait, derr := d.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// sendOnce is one attempt of rq.
func (d *Driver) sendOnce(ctx context.Context, rq request) ([]byte, error) {
	u, creds, err := d.objectURL(ctx, rq.key)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	sum := emptySum
	if rq.method == http.MethodPut {
		sum = hex.EncodeToString(rq.sum)
		body := rq.body
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header.Set("X-Amz-Content-Sha256", sum)
	if err := d.signer.SignHTTP(ctx, creds, req, sum, "s3", d.region, time.Now(),
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
		return nil, err
	}
	d.requests.add(rq.op)
	resp, err := d.hc.Do(req)
	if err != nil {
		// As the SDK's: a request that got no answer is a connection
		// error, which the retryer retries.
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, refusal(rq.op, resp)
	}
	if rq.method != http.MethodGet {
		// Nothing to read: drained only to reuse the connection.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) //nolint:errcheck // the answer is in
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSmall))
	if err != nil {
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	return b, nil
}
