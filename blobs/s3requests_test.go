package blobs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	blobs3 "github.com/kvreg/kvreg/blobs/s3"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// s3Store is a Store over a fresh bucket.
func s3Store(t *testing.T) (*Store, *blobs3.Driver) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	d := s3Driver(t, srv, bucket)
	return New(d), d
}

// s3Driver is a driver of its own over srv's bucket.
func s3Driver(t *testing.T, srv s3test.Server, bucket string) *blobs3.Driver {
	t.Helper()
	d, err := blobs3.New(context.Background(), blobs3.Config{
		Bucket: bucket, Prefix: "kvreg", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	// As a server's readiness check does before the first push: learn
	// whether the bucket honours conditional writes.
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// requests is what d sent during fn, in all.
func requests(d *blobs3.Driver, fn func()) (n uint64, by map[string]uint64) {
	before := d.Requests()
	fn()
	by = map[string]uint64{}
	for op, c := range d.Requests() {
		if c > before[op] {
			by[op] = c - before[op]
			n += c - before[op]
		}
	}
	return n, by
}

// A push of a blob shorter than a part, through the Store as the API
// sends it, on S3: the upload's start sends nothing (deferred: the bucket's
// token key, read or made by the first start, vouches for it), the
// chunk two writes (its segment and the state, no read: the token says
// there is none), and the commit, which holds the upload so that its
// state is read once, writes only the index (the state names the digest
// by its checkpoint) and removes the upload once, three.
func TestS3PushRequests(t *testing.T) {
	s, d := s3Store(t)
	body := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{1}).Read(body)
	if n, by := requests(d, func() {
		if _, err := s.NewUpload("r"); err != nil {
			t.Fatal(err)
		}
	}); n != 2 || by["GetObject"] != 1 || by["PutObject"] != 1 {
		t.Errorf("the first start on a bucket sent %v, want the token key looked for and made", by)
	}
	var ref string
	if n, by := requests(d, func() {
		var err error
		if ref, err = s.NewUpload("r"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("starting an upload sent %v, want nothing", by)
	}
	if n, by := requests(d, func() {
		if _, err := s.AppendExact("r", ref, 0, int64(len(body)), bytes.NewReader(body), 0); err != nil {
			t.Fatal(err)
		}
	}); n != 2 || by["PutObject"] != 2 {
		t.Errorf("a chunk sent %v, want two PUTs", by)
	}
	id := UploadRef(ref, int64(len(body)))
	dg := digest.FromBytes(body)
	if n, by := requests(d, func() {
		if _, err := s.Commit("r", id, dg, int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}); n != 3 || by["GetObject"] != 1 || by["PutObject"] != 1 || by["DeleteObject"] != 1 {
		t.Errorf("the commit sent %v (%d requests), want one GET, one PUT and one DELETE", by, n)
	}
	readsBack(t, s, dg, body)
	if ids, err := s.Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads left: %v %v", ids, err)
	}
}

// The same push with each request on another Store over the bucket, as
// replicas behind a load balancer take them: the first chunk takes the
// token's word that the upload has no state, and the commit, on a Store
// that has not seen the upload, reads its state once (its record and its
// checkpoint in one read), so the chunk and the commit cost what they
// cost on the Store that started the upload.
func TestS3PushRequestsAcrossStores(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	db, dc := s3Driver(t, srv, bucket), s3Driver(t, srv, bucket)
	a, b, c := New(s3Driver(t, srv, bucket)), New(db), New(dc)
	body := make([]byte, 100<<10)
	rand.NewChaCha8([32]byte{2}).Read(body)
	ref, err := a.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	// b reads the token key once, as every process does at its first
	// deferred upload.
	if _, err := b.NewUpload("r"); err != nil {
		t.Fatal(err)
	}
	if n, by := requests(db, func() {
		if _, err := b.AppendExact("r", ref, 0, int64(len(body)), bytes.NewReader(body), 0); err != nil {
			t.Fatal(err)
		}
	}); n != 2 || by["PutObject"] != 2 {
		t.Errorf("a chunk on another store sent %v, want two PUTs", by)
	}
	id := UploadRef(ref, int64(len(body)))
	dg := digest.FromBytes(body)
	if n, by := requests(dc, func() {
		if _, err := c.Commit("r", id, dg, int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}); n != 3 || by["GetObject"] != 1 || by["PutObject"] != 1 || by["DeleteObject"] != 1 {
		t.Errorf("the commit on a third store sent %v (%d requests), want one GET, one PUT and one DELETE", by, n)
	}
	readsBack(t, a, dg, body)
}

// readsBack fails t unless blob dg of s reads back as body.
func readsBack(t *testing.T, s *Store, dg digest.Digest, body []byte) {
	t.Helper()
	rc, err := s.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the blob reads back %d bytes (%v), want %d", len(got), err, len(body))
	}
}

// A chunk refused for its length (longer or shorter than its range says,
// or past the upload's bound) is refused while it is read, before the
// driver writes anything of it: no state of the upload ever holds it,
// for another process to commit, and nothing has to be taken back.
func TestS3RefusedChunkIsNeverWritten(t *testing.T) {
	s, d := s3Store(t)
	id, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	prefix := bytes.Repeat([]byte("p"), 1000)
	if _, err := s.Append("r", id, 0, bytes.NewReader(prefix), 0); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("c"), 20)
	for _, c := range []struct {
		name   string
		length int64
		max    int64
		want   error
	}{
		{"longer than its range", 10, 0, ErrSizeInvalid},
		{"shorter than its range", 30, 0, ErrSizeInvalid},
		{"past the upload's bound", -1, 1010, ErrTooLarge},
	} {
		var aerr error
		_, by := requests(d, func() {
			_, aerr = s.AppendExact("r", id, int64(len(prefix)), c.length, bytes.NewReader(chunk), c.max)
		})
		if !errors.Is(aerr, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, aerr, c.want)
		}
		if by["PutObject"] != 0 || by["DeleteObject"] != 0 {
			t.Errorf("%s: the refused chunk sent %v", c.name, by)
		}
	}
	if n, err := s.AppendExact("r", id, int64(len(prefix)), int64(len(chunk)), bytes.NewReader(chunk), 0); err != nil || n != int64(len(prefix)+len(chunk)) {
		t.Fatalf("the chunk as announced: %d, %v", n, err)
	}
	body := append(prefix, chunk...)
	if _, err := s.Commit("r", id, digest.FromBytes(body), int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	readsBack(t, s, digest.FromBytes(body), body)
}

// A chunk sent again to the upload's first URL (its token's reference)
// through a process that has not seen the upload, once the upload has
// bytes: the token's word that the upload has none is stale, and the
// state's write made only if none exists finds it. The chunk is refused
// as out of order, with the upload's size, and the upload is as it was.
func TestS3ChunkSentAgainToTheFirstURL(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	a, b, c := New(s3Driver(t, srv, bucket)), New(s3Driver(t, srv, bucket)), New(s3Driver(t, srv, bucket))
	first := bytes.Repeat([]byte("first chunk "), 100)
	ref, err := a.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendExact("r", ref, 0, int64(len(first)), bytes.NewReader(first), 0); err != nil {
		t.Fatal(err)
	}
	again := bytes.Repeat([]byte("other bytes "), 100)
	n, err := c.AppendExact("r", ref, 0, int64(len(again)), bytes.NewReader(again), 0)
	if !errors.Is(err, ErrRangeInvalid) || n != int64(len(first)) {
		t.Fatalf("the chunk sent again: %d, %v; want ErrRangeInvalid at %d bytes", n, err, len(first))
	}
	id := UploadRef(ref, n)
	if size, err := a.UploadSize("r", id); err != nil || size != int64(len(first)) {
		t.Fatalf("the upload after it: %d bytes, %v", size, err)
	}
	if _, err := c.Commit("r", id, digest.FromBytes(first), int64(len(first)), func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	readsBack(t, a, digest.FromBytes(first), first)
}

// A deferred upload's token is good for the upload life from the start,
// on every Store over the bucket: within it, an upload that never got
// bytes is started and empty wherever it is asked for; past it, the
// upload is unknown, as an idle upload is once ExpireUploads has ended it,
// and a first chunk under the token writes nothing.
func TestS3TokenIsGoodForTheUploadLife(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	da, db := s3Driver(t, srv, bucket), s3Driver(t, srv, bucket)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, b := New(da), New(db)
	a.SetUploadLife(time.Hour, clock)
	b.SetUploadLife(time.Hour, clock)
	ref, err := a.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if size, err := b.UploadSize("r", ref); err != nil || size != 0 {
		t.Fatalf("the upload an upload life after its start: %d bytes, %v; want started and empty", size, err)
	}
	now = now.Add(time.Second)
	if _, err := b.UploadSize("r", ref); !errors.Is(err, ErrUploadUnknown) {
		t.Fatalf("the upload past its life: %v, want ErrUploadUnknown", err)
	}
	chunk := []byte("late bytes")
	if n, by := requests(db, func() {
		if _, err := b.AppendExact("r", ref, 0, int64(len(chunk)), bytes.NewReader(chunk), 0); !errors.Is(err, ErrUploadUnknown) {
			t.Fatalf("a first chunk past the upload's life: %v, want ErrUploadUnknown", err)
		}
	}); by["PutObject"] != 0 {
		t.Errorf("the refused chunk sent %v (%d requests), want no write", by, n)
	}
	if ids, err := b.Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads after the refused chunk: %v, %v", ids, err)
	}
	// An upload life of 0 (uploads never expire) is no limit, however
	// old the token.
	now = now.Add(30 * 24 * time.Hour)
	c := New(s3Driver(t, srv, bucket))
	c.SetUploadLife(0, clock)
	if size, err := c.UploadSize("r", ref); err != nil || size != 0 {
		t.Fatalf("the upload past an upload life on a store with none: %d bytes, %v; want started and empty", size, err)
	}
}
