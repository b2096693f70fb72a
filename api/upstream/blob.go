package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Blob opens the blob d of repo: a stream of its bytes and their length
// (the Content-Length, -1 when the upstream does not say). Redirects are
// followed, without credentials when they leave the upstream. The caller
// checks the bytes as it reads them (VerifyingReader) and closes the
// stream. A stream that moves no byte for the client's timeout fails with
// ErrUnavailable.
func (c *Client) Blob(ctx context.Context, repo string, d digest.Digest) (rc io.ReadCloser, size int64, err error) {
	defer func() { c.counts.add(KindBlob, err) }()
	if err := checkRepo(repo); err != nil {
		return nil, 0, err
	}
	if err := d.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: digest %q: %v", ErrInvalid, d, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	idle := &idleTimer{cancel: cancel, timeout: c.cfg.Timeout}
	idle.start()
	resp, err := c.get(ctx, http.MethodGet, repo, c.v2(repo, "blobs", d.String()), "")
	if err == nil {
		err = check(resp, http.StatusOK)
	}
	if err != nil {
		idle.stop()
		cancel(nil)
		return nil, 0, idle.explain(err)
	}
	return &blobStream{body: resp.Body, idle: idle, cancel: cancel, where: "GET " + safeURL(resp.Request.URL)}, resp.ContentLength, nil
}

// idleTimer cancels a request that waits longer than timeout for its
// answer or for the next bytes of its body.
type idleTimer struct {
	cancel  context.CancelCauseFunc
	timeout time.Duration
	mu      sync.Mutex
	t       *time.Timer
	fired   bool
}

func (it *idleTimer) start() {
	it.t = time.AfterFunc(it.timeout, func() {
		it.mu.Lock()
		it.fired = true
		it.mu.Unlock()
		it.cancel(errTimedOut)
	})
}

func (it *idleTimer) reset() { it.t.Reset(it.timeout) }
func (it *idleTimer) stop()  { it.t.Stop() }

// explain turns the cancellation of a stalled request into ErrUnavailable.
func (it *idleTimer) explain(err error) error {
	it.mu.Lock()
	fired := it.fired
	it.mu.Unlock()
	if fired && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: no answer for %v: %v", ErrUnavailable, it.timeout, err)
	}
	return err
}

// blobStream is a blob's body whose reads keep its idle timer from firing.
type blobStream struct {
	body   io.ReadCloser
	idle   *idleTimer
	cancel context.CancelCauseFunc
	where  string
}

func (b *blobStream) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.idle.reset()
	}
	if err != nil && err != io.EOF {
		err = b.idle.explain(fmt.Errorf("%w: %s: reading: %v", ErrUnavailable, b.where, err))
	}
	return n, err
}

func (b *blobStream) Close() error {
	b.idle.stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// VerifyingReader reads r, which should be the size bytes (size < 0: any
// number) of the blob d; at the end of r it returns ErrDigestMismatch
// instead of io.EOF when the bytes do not hash to d or their number is not
// size, and as soon as there are more than size bytes.
func VerifyingReader(r io.Reader, d digest.Digest, size int64) io.Reader {
	vr := &verifyingReader{r: r, want: d, size: size}
	if d.Validate() == nil {
		vr.h = d.Algorithm().Hash()
	}
	return vr
}

type verifyingReader struct {
	r    io.Reader
	want digest.Digest
	size int64
	h    hash.Hash // nil: d is not a digest this can check
	n    int64
	err  error // sticky once set
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.h == nil {
		v.err = fmt.Errorf("%w: %q is not a digest that can be checked", ErrDigestMismatch, v.want)
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("%w: blob %s: more than %d bytes", ErrDigestMismatch, v.want, v.size)
		return n, v.err
	}
	if err == io.EOF {
		switch got := digest.NewDigest(v.want.Algorithm(), v.h); {
		case v.size >= 0 && v.n != v.size:
			err = fmt.Errorf("%w: blob %s: %d bytes, want %d", ErrDigestMismatch, v.want, v.n, v.size)
		case got != v.want:
			err = fmt.Errorf("%w: blob %s: bytes hash to %s", ErrDigestMismatch, v.want, got)
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}
