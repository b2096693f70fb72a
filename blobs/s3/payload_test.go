package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// received is a write with a body, as the S3 server received it.
type received struct {
	method, path string
	header       string // X-Amz-Content-Sha256
	sum          string // the body's sha256
	size         int
}

// recorder is a proxy in front of the real server that records every
// write with a body.
type recorder struct {
	mu  sync.Mutex
	got []received
}

func (rec *recorder) take() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.got
	rec.got = nil
	return out
}

// signedDriver is a driver over a fresh bucket reached through a recording
// proxy, whose client also reports each write whose payload reached the
// SDK's hashing step with no sum given (the SDK then hashes it itself):
// the writes of objects and parts, whose payloads are the upload's bytes.
func signedDriver(t *testing.T) (*Driver, *recorder, func() int) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	rec := &recorder{}
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if len(b) > 0 {
				s := sha256.Sum256(b)
				rec.mu.Lock()
				rec.got = append(rec.got, received{r.Method, r.URL.Path, r.Header.Get("X-Amz-Content-Sha256"), hex.EncodeToString(s[:]), len(b)})
				rec.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		server.ServeHTTP(w, r)
	})
	d, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: "kvreg", Endpoint: front, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	unsummed := 0
	spy := func(stack *middleware.Stack) error {
		if _, ok := stack.Finalize.Get("ComputePayloadHash"); !ok {
			return nil
		}
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("spyPayloadSum",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				op := middleware.GetOperationName(ctx)
				if op != "PutObject" && op != "UploadPart" {
					return next.HandleFinalize(ctx, in)
				}
				if req, ok := in.Request.(*smithyhttp.Request); ok && req.GetStream() != nil && v4.GetPayloadHash(ctx) == "" {
					mu.Lock()
					unsummed++
					mu.Unlock()
				}
				return next.HandleFinalize(ctx, in)
			}), "ComputePayloadHash", middleware.Before)
	}
	d.c = s3api.New(d.c.Options(), func(o *s3api.Options) { o.APIOptions = append(o.APIOptions, spy) })
	return d, rec, func() int { mu.Lock(); defer mu.Unlock(); return unsummed }
}

// running is a sha256 of an upload's bytes teed from each chunk, whose
// state is the checkpoint, as blobs keeps it.
type running struct{ h hash.Hash }

func (r *running) tee(b []byte) io.Reader { return io.TeeReader(bytes.NewReader(b), r.h) }
func (r *running) cp() []byte {
	b, _ := r.h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

// Every write's payload is signed with its own sha256, which the server
// received and checked; none is hashed by the SDK; and the driver hashes
// no upload byte the caller's running hash covers: an upload's first
// chunk (in place) and its data object written whole at Seal cost no
// hashing of the driver's, a later chunk is hashed once.
func TestPayloadsSignedAndHashedOnce(t *testing.T) {
	d, rec, unsummed := signedDriver(t)
	first, second := randomBytes(1<<20, 1), randomBytes(300<<10, 2)
	run := &running{h: sha256.New()}
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	h0 := d.hashed.Load()
	if _, err := d.AppendCheckpoint("u", 0, run.tee(first), run.cp); err != nil {
		t.Fatal(err)
	}
	// The state object is the one payload the driver hashes itself.
	if n := d.hashed.Load() - h0; n >= 16<<10 {
		t.Errorf("the driver hashed %d bytes for an in-place chunk of %d, want only its state's", n, len(first))
	}
	h1 := d.hashed.Load()
	if _, err := d.AppendCheckpoint("u", int64(len(first)), run.tee(second), run.cp); err != nil {
		t.Fatal(err)
	}
	if n := d.hashed.Load() - h1; n < int64(len(second)) || n >= int64(len(second))+16<<10 {
		t.Errorf("the driver hashed %d bytes for a later chunk of %d, want it once and its state", n, len(second))
	}
	h2 := d.hashed.Load()
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	if n := d.hashed.Load() - h2; n >= 16<<10 {
		t.Errorf("Seal's write of the %d bytes whole had the driver hash %d bytes, want only the state's", len(first)+len(second), n)
	}
	got := rec.take()
	var big int
	for _, r := range got {
		if r.header != r.sum {
			t.Errorf("%s %s of %d bytes was signed with payload %q, want its sha256 %s", r.method, r.path, r.size, r.header, r.sum)
		}
		if r.size >= 300<<10 {
			big++
		}
	}
	// The first chunk in place, the second as a segment, both whole at Seal.
	if big != 3 {
		t.Errorf("the server received %d writes of upload bytes (%v), want 3", big, got)
	}
	if n := unsummed(); n != 0 {
		t.Errorf("%d payloads reached the SDK with no sum given, which it then hashes again", n)
	}
}

// A multipart upload: each part is signed with its sha256, computed once,
// and not at all for the first, whose sum is the checkpoint's when it is
// read; the tail, copied into the last part at Seal, is not hashed again.
func TestPartsSignedWithTheirSum(t *testing.T) {
	d, rec, unsummed := signedDriver(t)
	body := randomBytes(2*MinPartSize+1000, 3)
	run := &running{h: sha256.New()}
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	h0 := d.hashed.Load()
	if _, err := d.AppendCheckpoint("u", 0, run.tee(body), run.cp); err != nil {
		t.Fatal(err)
	}
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	// The second part and the tail, and the states.
	if n, want := d.hashed.Load()-h0, int64(MinPartSize+1000); n < want || n >= want+16<<10 {
		t.Errorf("the driver hashed %d bytes of an upload of %d, want the second part and the tail once (%d) and the states", n, len(body), want)
	}
	parts := 0
	for _, r := range rec.take() {
		if r.header != r.sum {
			t.Errorf("%s %s of %d bytes was signed with payload %q, want its sha256 %s", r.method, r.path, r.size, r.header, r.sum)
		}
		if r.size >= MinPartSize {
			parts++
		}
	}
	if parts != 2 {
		t.Errorf("the server received %d full parts, want 2", parts)
	}
	if n := unsummed(); n != 0 {
		t.Errorf("%d payloads reached the SDK with no sum given, which it then hashes again", n)
	}
}

// A checkpoint that is a sha256 of as many other bytes signs the chunk
// with a sum that is not its own: the server refuses the write, and the
// upload stays as it was.
func TestCheckpointOfOtherBytesFailsTheAppend(t *testing.T) {
	d, _, _ := signedDriver(t)
	body, other := randomBytes(1000, 4), randomBytes(1000, 5)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	wrong := &running{h: sha256.New()}
	wrong.h.Write(other)
	_, err := d.AppendCheckpoint("u", 0, bytes.NewReader(body), wrong.cp)
	if err == nil {
		t.Fatal("an Append signed with the sum of other bytes succeeded")
	}
	if info, err := d.Upload("u"); err != nil || info.Size != 0 {
		t.Fatalf("after the refused Append the upload holds %d bytes (%v), want 0", info.Size, err)
	}
}

// A server that does not implement UploadPartCopy (501 NotImplemented, as
// a proxy in front of the real one answers here) gets the tail read back
// and sent as the last part.
func TestSealWithoutPartCopy(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var refused atomic.Int32
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			refused.Add(1)
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>no copy</Message></Error>`)
			return
		}
		server.ServeHTTP(w, r)
	})
	d, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: "kvreg", Endpoint: front, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(MinPartSize+5000, 6)
	dg := promoted(t, d, "u", body)
	if n := refused.Load(); n != 1 {
		t.Fatalf("the server was asked %d times for a copy, want once", n)
	}
	if b := readBlob(t, d, dg); !bytes.Equal(b, body) {
		t.Fatalf("the blob reads back %d bytes, want the %d pushed", len(b), len(body))
	}
}
