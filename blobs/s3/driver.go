package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/kvreg/kvreg/blobs/driver"
)

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// DefaultPartSize is the part size when Config leaves it zero: large enough
// for few requests, small enough to hold one per upload in memory.
const DefaultPartSize = 8 << 20

// Config names a bucket and how to reach it.
type Config struct {
	Bucket string
	Prefix string // keys start with Prefix + "/" when it is not empty
	// Endpoint is the server's URL for a non-AWS server; empty for AWS.
	Endpoint  string
	Region    string
	PathStyle bool // path-style addressing, which non-AWS servers need
	// AccessKey and SecretKey, when set, are the credentials; otherwise
	// the usual AWS ways (environment, shared config, instance roles).
	AccessKey, SecretKey string
	PartSize             int64 // bytes per multipart part; DefaultPartSize if 0
	MaxAttempts          int   // per request, retrying throttling and 5xx; 10 if 0
	// MaxBackoff caps the exponential, jittered wait between attempts;
	// the SDK's 20s if 0.
	MaxBackoff time.Duration
}

// Driver is a blob driver over one bucket. It is safe for concurrent use
// within the serialisation blobs/driver asks of its caller.
type Driver struct {
	c        *s3api.Client
	bucket   string
	prefix   string
	partSize int64
	bufs     *buffers // one per Append or Seal in flight
	locs     locations
	requests *requestCounts
	holds    holds
	cond     lazy[bool]  // conditional writes honoured (conditional.go)
	hashed   hashedBytes // payload bytes hashed by the driver (payloadSum)

	signer  *v4.Signer // presigned URLs (presign.go) and requests sent directly (direct.go)
	creds   aws.CredentialsProvider
	region  string
	hc      aws.HTTPClient // the SDK's, shared with direct.go
	retryer aws.Retryer    // the SDK's, shared with direct.go

	states    driver.States  // where upload states are, if not in the bucket (states.go)
	tokKey    lazy[[]byte]   // the key of upload tokens (deferred.go)
	bucketURL lazy[*url.URL] // see presignBase
}

var _ driver.Driver = (*Driver)(nil)

// New makes a driver for cfg. It does not touch the bucket.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%w: no bucket", ErrConfig)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("%w: part size %d is under S3's minimum of %d", ErrConfig, cfg.PartSize, MinPartSize)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	// SlowDown (503) is among the standard retryer's throttling codes; it
	// backs off exponentially with jitter. No client-side retry quota: a
	// burst of SlowDown from a busy server must slow uploads down, not
	// fail them.
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.RateLimiter = ratelimit.None
		if cfg.MaxBackoff > 0 {
			o.MaxBackoff = cfg.MaxBackoff
		}
	})
	// versitygw's posix backend answers a PUT whose parent directory a
	// concurrent DELETE removed (it prunes emptied directories) with 409
	// ExistingObjectIsDirectory; kvreg never makes a key that is a
	// directory, so that is transient.
	retryer := retry.AddWithErrorCodes(std, "ExistingObjectIsDirectory")
	hc := awshttp.NewBuildableClient().WithTransportOptions(tuneTransport)
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return retryer }),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithHTTPClient(hc),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	counts := &requestCounts{n: map[string]uint64{}}
	c := s3api.NewFromConfig(awsCfg, func(o *s3api.Options) {
		o.APIOptions = append(o.APIOptions, counts.middleware)
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.APIOptions = append(o.APIOptions, markUnavailable, signPayloadSum)
	})
	p := strings.Trim(cfg.Prefix, "/")
	if p != "" {
		p += "/"
	}
	d := &Driver{c: c, bucket: cfg.Bucket, prefix: p, partSize: cfg.PartSize, requests: counts, signer: v4.NewSigner(),
		creds: c.Options().Credentials, region: c.Options().Region, hc: hc, retryer: retryer}
	d.bufs = newBuffers(int(d.partSize))
	return d, nil
}

// PartSize is the size of every part but an upload's last.
func (d *Driver) PartSize() int64 { return d.partSize }

func (d *Driver) key(parts ...string) string { return d.prefix + strings.Join(parts, "/") }

// notFound reports whether err is S3's answer for a missing key or upload.
func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsu) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		}
	}
	return false
}

// preconditionFailed reports whether a conditional write found the key.
func preconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		case "":
		default:
			// Another 409 (versitygw's ExistingObjectIsDirectory) is a
			// failure, not a key that exists.
			return false
		}
	}
	// 412 Precondition Failed, or 409 for a conditional write racing
	// another, from a server that names no code.
	st := httpStatus(err)
	return st == 412 || st == 409
}

// maxSmall bounds what getSmall reads of an object.
const maxSmall = 1 << 20

// getSmall reads a small object whole (direct.go). A body cut short is
// tried again, as a request that failed, and then is the store
// unavailable.
func (d *Driver) getSmall(ctx context.Context, key string) ([]byte, error) {
	b, err := d.send(ctx, request{op: "GetObject", method: http.MethodGet, key: key})
	if err != nil && notFound(err) {
		return nil, driver.ErrNotFound
	}
	return b, err
}

// put writes a small object; with create it fails with errExists if the
// key exists (a conditional write, where the server supports them).
func (d *Driver) put(ctx context.Context, key string, body []byte, create bool) error {
	return d.putSum(ctx, key, body, create, nil)
}

// putSum is put of a body whose sha256 is sum, or, if sum is nil, is
// computed here.
func (d *Driver) putSum(ctx context.Context, key string, body []byte, create bool, sum []byte) error {
	if sum == nil {
		sum = d.payloadSum(body)
	}
	rq := request{op: "PutObject", method: http.MethodPut, key: key, body: body, sum: sum}
	if create {
		rq.header = http.Header{"If-None-Match": {"*"}}
	}
	_, err := d.send(ctx, rq)
	if err != nil && create && preconditionFailed(err) {
		return errExists
	}
	return err
}

var errExists = errors.New("s3 blob store: key exists")

// exists reports whether key names an object.
func (d *Driver) exists(ctx context.Context, key string) (bool, error) {
	_, err := d.c.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if err == nil {
		return true, nil
	}
	if notFound(err) {
		return false, nil
	}
	return false, err
}

// del removes an object; a missing one is success.
func (d *Driver) del(ctx context.Context, key string) error {
	_, err := d.send(ctx, request{op: "DeleteObject", method: http.MethodDelete, key: key})
	if err != nil && notFound(err) {
		return nil
	}
	return err
}

// list calls fn for every object under prefix, or with delim "/", for every
// common prefix (fn's size is then -1).
func (d *Driver) list(ctx context.Context, prefix, delim string, fn func(key string, size int64) error) error {
	in := &s3api.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix}
	if delim != "" {
		in.Delimiter = &delim
	}
	p := s3api.NewListObjectsV2Paginator(d.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, cp := range page.CommonPrefixes {
			if err := fn(aws.ToString(cp.Prefix), -1); err != nil {
				return err
			}
		}
		for _, o := range page.Contents {
			if err := fn(aws.ToString(o.Key), aws.ToInt64(o.Size)); err != nil {
				return err
			}
		}
	}
	return nil
}
