package s3

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// MaxPresignTTL is the longest a SigV4 presigned URL may stay valid.
const MaxPresignTTL = 7 * 24 * time.Hour

var (
	_ driver.Presigner            = (*Driver)(nil)
	_ driver.IncarnationPresigner = (*Driver)(nil)
)

// PresignGet signs a GET of the data object dg's index names, on the
// configured endpoint, valid for ttl (whole seconds, at least one). The
// response's Content-Type is set by the URL (response-content-type), not
// by whatever the object was stored with. Reading the index is the one
// request it makes: a blob without one is driver.ErrNotFound.
func (d *Driver) PresignGet(dg digest.Digest, ttl time.Duration) (string, error) {
	return d.presignGetAt(dg, 0, "", ttl, time.Time{})
}

// PresignGetIncarnation is PresignGet for incarnation inc of dg's record,
// whose bytes are in the data object obj when it is not "" (what
// PromoteLocated gave when the incarnation's upload was promoted): then,
// or when a data object is remembered for inc (by an earlier call with
// it), it signs with no request; otherwise the index is read, as by
// PresignGet, and what it names is remembered for inc. The URL signed last
// for inc and its object is handed out again, with no new signature, while
// at least half of ttl is left of it: every URL is valid for at least
// ttl/2. A location remembered for another incarnation, or by Open (which
// can check it, a URL cannot), is not used. See locations.
func (d *Driver) PresignGetIncarnation(dg digest.Digest, inc int64, obj string, ttl time.Duration) (string, error) {
	return d.presignGetAt(dg, inc, obj, ttl, time.Time{})
}

// presignGetAt is PresignGetIncarnation signing as of at (the zero time:
// now), so that tests can make a URL that has already expired without
// waiting.
func (d *Driver) presignGetAt(dg digest.Digest, inc int64, obj string, ttl time.Duration, at time.Time) (string, error) {
	if ttl < time.Second || ttl > MaxPresignTTL {
		return "", fmt.Errorf("%w: presigned URL lifetime %v: between 1s and %v", ErrConfig, ttl, MaxPresignTTL)
	}
	ctx := context.Background()
	loc, ok := d.locs.get(dg)
	switch {
	case ok && inc != 0 && loc.inc == inc && (loc.ix.Object == obj || obj == "" && !loc.recorded):
		// Found for inc, or taken from its record and still what the
		// record names (a record that names none any more, after a
		// repair, is read afresh).
	case inc != 0 && obj != "":
		loc = location{ix: index{Object: obj}, inc: inc, recorded: true}
		d.locs.put(dg, loc)
	default:
		ix, err := d.readIndex(ctx, dg)
		if err != nil {
			return "", err
		}
		loc = location{ix: ix, inc: inc}
		if inc != 0 {
			d.locs.put(dg, loc)
		}
	}
	now := time.Now()
	if at.IsZero() && inc != 0 && loc.reusable(ttl, now) {
		return loc.url, nil
	}
	ix := loc.ix
	pc := s3api.NewPresignClient(d.c, func(o *s3api.PresignOptions) {
		o.Expires = ttl
		if !at.IsZero() {
			o.Presigner = signedAt{v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }), at}
		}
	})
	req, err := pc.PresignGetObject(ctx, &s3api.GetObjectInput{
		Bucket:              &d.bucket,
		Key:                 &ix.Object,
		ResponseContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return "", err
	}
	if at.IsZero() && inc != 0 {
		loc.url, loc.urlTTL, loc.signed = req.URL, ttl, now
		d.locs.put(dg, loc)
	}
	return req.URL, nil
}

// signedAt presigns as of a fixed time instead of the clock's.
type signedAt struct {
	p  *v4.Signer
	at time.Time
}

func (s signedAt) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return s.p.PresignHTTP(ctx, creds, r, payloadHash, service, region, s.at, optFns...)
}
