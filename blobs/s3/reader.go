package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kvreg/kvreg/blobs/driver"
)

// reader streams an object with Range requests: one response is read
// while the reader moves forward. A Seek only moves the offset: a Read at
// an offset other than the response's drops it and asks for the rest of
// the object from there. So the seek to the end and back that readers of
// a ReadSeeker make to learn its size (net/http's ServeContent) costs no
// request and keeps the response Open started.
type reader struct {
	d         *Driver
	key       string
	size, off int64
	body      io.ReadCloser
	bodyOff   int64 // the offset of body's next byte
}

var errSeek = errors.New("s3 blob store: seek to a negative offset")

func (r *reader) open(ctx context.Context) error {
	rng := fmt.Sprintf("bytes=%d-%d", r.off, r.size-1)
	out, err := r.d.c.GetObject(ctx, &s3api.GetObjectInput{Bucket: &r.d.bucket, Key: &r.key, Range: &rng})
	if err != nil {
		if notFound(err) {
			return driver.ErrNotFound
		}
		return err
	}
	r.body, r.bodyOff = out.Body, r.off
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body != nil && r.bodyOff != r.off {
		r.body.Close()
		r.body = nil
	}
	if r.body == nil {
		if err := r.open(context.Background()); err != nil {
			return 0, err
		}
	}
	if rest := r.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	r.bodyOff = r.off
	if err == io.EOF {
		r.body.Close()
		r.body = nil
		if r.off < r.size {
			if n > 0 {
				return n, nil
			}
			err = io.ErrUnexpectedEOF
		} else {
			err = nil
		}
	}
	if err != nil && unreachable(err) {
		// A body cut short is the store failing, not the bytes: callers
		// tell the two apart (a check must not call such a blob corrupt).
		err = fmt.Errorf("%w: %w", driver.ErrUnavailable, err)
	}
	return n, err
}

func (r *reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return r.off, errSeek
	}
	r.off = offset
	return offset, nil
}

func (r *reader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
