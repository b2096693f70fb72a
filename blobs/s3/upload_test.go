package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// appendAll appends each chunk at the upload's size and returns them joined.
func appendAll(t *testing.T, d *Driver, id string, chunks ...[]byte) []byte {
	t.Helper()
	var all []byte
	for _, c := range chunks {
		info, err := d.Upload(id)
		if err != nil {
			t.Fatal(err)
		}
		n, err := d.Append(id, info.Size, bytes.NewReader(c))
		if err != nil || n != int64(len(c)) {
			t.Fatalf("append of %d bytes at %d: %d, %v", len(c), info.Size, n, err)
		}
		all = append(all, c...)
	}
	return all
}

func readUpload(t *testing.T, d *Driver, id string) []byte {
	t.Helper()
	rc, err := d.ReadUpload(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What the bucket holds, besides upload state and tails: every key, and
// every multipart upload in progress.
func bucketKeys(t *testing.T, d *Driver) []string {
	t.Helper()
	var keys []string
	if err := d.list(context.Background(), d.prefix, "", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

func multipartUploads(t *testing.T, d *Driver) int {
	t.Helper()
	out, err := d.c.ListMultipartUploads(context.Background(), &s3api.ListMultipartUploadsInput{Bucket: aws.String(d.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// Chunks of 1 KiB, 3 MiB and 7 MiB cross the 5 MiB parts at odd offsets;
// the blob reads back byte for byte, whole and from offsets in every part.
func TestChunksOfAnySize(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	c1, c2, c3 := randomBytes(1<<10, 1), randomBytes(3<<20, 2), randomBytes(7<<20, 3)
	body := appendAll(t, d, "u", c1)
	if got := readUpload(t, d, "u"); !bytes.Equal(got, c1) {
		t.Fatalf("an upload of one short chunk reads back %d bytes", len(got))
	}
	body = append(body, appendAll(t, d, "u", c2)...)
	n, err := d.Append("u", int64(len(body)), bytes.NewReader(c3))
	if err != nil || n != int64(len(c3)) {
		t.Fatalf("append: %d, %v", n, err)
	}
	body = append(body, c3...)
	st, err := d.readState(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 2 || st.TailSize != int64(len(body))-2*MinPartSize || st.Size != int64(len(body)) {
		t.Fatalf("%d parts and a tail of %d bytes for %d bytes; want 2 parts of %d", len(st.Parts), st.TailSize, len(body), MinPartSize)
	}
	if multipartUploads(t, d) != 1 {
		t.Fatal("no multipart upload in progress")
	}
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	if multipartUploads(t, d) != 0 {
		t.Fatal("a multipart upload is left after Seal")
	}
	if got := readUpload(t, d, "u"); !bytes.Equal(got, body) {
		t.Fatalf("sealed upload reads back %d bytes, want %d", len(got), len(body))
	}
	dg := digest.FromBytes(body)
	if created, err := d.Promote("u", dg); err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	if err := d.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("blob reads back %d bytes (%v), want %d", len(got), err, len(body))
	}
	for _, off := range []int64{0, 1 << 10, MinPartSize - 1, MinPartSize + 7, 2*MinPartSize + 3, int64(len(body)) - 1} {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 4096)
		n, err := io.ReadFull(f, p)
		want := body[off:min(off+4096, int64(len(body)))]
		if !bytes.Equal(p[:n], want) || (err != nil && n != len(want)) {
			t.Fatalf("at %d: read %d bytes (%v) that differ from the blob's", off, n, err)
		}
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("bucket holds %v; want the data object and its index", keys)
	}
}

// RemoveUpload aborts the multipart upload and leaves nothing behind.
func TestRemoveUploadAborts(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "u", randomBytes(6<<20, 4), randomBytes(100, 5))
	if multipartUploads(t, d) != 1 {
		t.Fatal("no multipart upload in progress")
	}
	if err := d.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	if n := multipartUploads(t, d); n != 0 {
		t.Fatalf("%d multipart uploads left", n)
	}
	if keys := bucketKeys(t, d); len(keys) != 0 {
		t.Fatalf("bucket holds %v after the upload was removed", keys)
	}
	// And a sealed upload never promoted: its data object goes too.
	if err := d.CreateUpload("v", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "v", randomBytes(6<<20, 6))
	if err := d.Seal("v"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("v"); err != nil {
		t.Fatal(err)
	}
	if keys := bucketKeys(t, d); len(keys) != 0 || multipartUploads(t, d) != 0 {
		t.Fatalf("bucket holds %v after a sealed upload was removed", keys)
	}
}

// A later upload of a digest with other bytes (one blobs would refuse, or
// a promotion racing another) never changes what the digest reads.
func TestPromotedBytesNotReplaced(t *testing.T) {
	d := newDriver(t)
	good := randomBytes(6<<20, 7)
	dg := digest.FromBytes(good)
	if err := d.CreateUpload("good", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "good", good)
	if err := d.Seal("good"); err != nil {
		t.Fatal(err)
	}
	if created, err := d.Promote("good", dg); err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	if err := d.RemoveUpload("good"); err != nil {
		t.Fatal(err)
	}
	bad := randomBytes(6<<20, 8)
	if err := d.CreateUpload("bad", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "bad", bad)
	if err := d.Seal("bad"); err != nil {
		t.Fatal(err)
	}
	if created, err := d.Promote("bad", dg); err != nil || created {
		t.Fatalf("promote of other bytes over a blob: created %v, %v", created, err)
	}
	if err := d.Unpromote("bad", dg); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("bad"); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("blob reads %d bytes that are not the good copy (%v)", len(got), err)
	}
	if n, err := d.Stat(dg); err != nil || n != int64(len(good)) {
		t.Fatalf("stat: %d, %v", n, err)
	}
}

// Truncate undoes an Append that filled parts (blobs does so when a chunk
// goes past its announced length), and a failed Append leaves the upload
// as it was.
func TestTruncateAcrossParts(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	body := appendAll(t, d, "u", randomBytes(1<<10, 9))
	appendAll(t, d, "u", randomBytes(11<<20, 10))
	if err := d.Truncate("u", int64(len(body))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(randomBytes(6<<20, 11)), &failing{boom})
	if _, err := d.Append("u", int64(len(body)), r); !errors.Is(err, boom) {
		t.Fatalf("append from a failing reader: %v", err)
	}
	if err := d.Truncate("u", int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if info, err := d.Upload("u"); err != nil || info.Size != int64(len(body)) {
		t.Fatalf("upload after truncate: %+v, %v", info, err)
	}
	body = append(body, appendAll(t, d, "u", randomBytes(5<<20+3, 12))...)
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	if got := readUpload(t, d, "u"); !bytes.Equal(got, body) {
		t.Fatalf("upload reads back %d bytes, want %d", len(got), len(body))
	}
	if multipartUploads(t, d) != 0 {
		t.Fatal("a multipart upload is left after Seal")
	}
}

// An empty blob is an empty object.
func TestEmptyBlob(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(nil)
	if created, err := d.Promote("u", dg); err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, err := io.ReadAll(f); err != nil || len(b) != 0 {
		t.Fatalf("empty blob reads %d bytes, %v", len(b), err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// Two processes promoting one digest at once: the index is written with a
// conditional create, so the second finds the first's and creates nothing.
func TestIndexCreateIsConditional(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	key := d.indexKey(digest.FromString("x"))
	if err := d.put(ctx, key, []byte(`{"object":"a","size":1}`), true); err != nil {
		t.Fatal(err)
	}
	if err := d.put(ctx, key, []byte(`{"object":"b","size":1}`), true); !errors.Is(err, errExists) {
		t.Fatalf("second conditional create: %v, want errExists", err)
	}
	if ix, err := d.readIndex(ctx, digest.FromString("x")); err != nil || ix.Object != "a" {
		t.Fatalf("index after a refused create: %+v, %v", ix, err)
	}
}

// Short chunks each add a segment to the tail (more than maxSegments of
// them rewrite it as one); the tail reads back before Seal, Truncate cuts
// inside a segment, and the part that fills starts with the tail's bytes.
func TestManySmallChunks(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for i := range maxSegments + 8 {
		body = append(body, appendAll(t, d, "u", randomBytes(100<<10+i, uint64(100+i)))...)
	}
	st, err := d.readState(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 0 || len(st.Tail) > maxSegments || st.TailSize != int64(len(body)) {
		t.Fatalf("%d parts, %d segments of %d bytes for %d bytes", len(st.Parts), len(st.Tail), st.TailSize, len(body))
	}
	if got := readUpload(t, d, "u"); !bytes.Equal(got, body) {
		t.Fatalf("unsealed upload reads back %d bytes, want %d", len(got), len(body))
	}
	body = append(body, appendAll(t, d, "u", randomBytes(1000, 200))...)
	// Cut inside the last segment but one: not the size before the last
	// Append, so the segment is rewritten.
	cut := int64(len(body)) - 1000 - 50
	if err := d.Truncate("u", cut); err != nil {
		t.Fatal(err)
	}
	body = body[:cut]
	if got := readUpload(t, d, "u"); !bytes.Equal(got, body) {
		t.Fatalf("truncated upload reads back %d bytes, want %d", len(got), len(body))
	}
	body = append(body, appendAll(t, d, "u", randomBytes(4<<20, 201))...)
	sealLeavesTheBytes(t, d, "u", body)
}

// sealLeavesTheBytes seals upload id, which must read back as body, and
// checks that only its state and its data object are left in the bucket.
func sealLeavesTheBytes(t *testing.T, d *Driver, id string, body []byte) {
	t.Helper()
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
	if got := readUpload(t, d, id); !bytes.Equal(got, body) {
		t.Fatalf("sealed upload reads back %d bytes, want %d", len(got), len(body))
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("bucket holds %v after Seal", keys)
	}
}

// Segments once written as the data object go too: one that an Append
// rewrote into one segment (the tail reached maxSegments), one that
// Truncate dropped. RemoveUpload then leaves nothing, nor does Seal
// leave more than the data object.
func TestSegmentsOnceInPlaceGo(t *testing.T) {
	d := newDriver(t)
	for _, seal := range []bool{false, true} {
		if err := d.CreateUpload("u", "r"); err != nil {
			t.Fatal(err)
		}
		first := appendAll(t, d, "u", randomBytes(10<<10, 300))
		if err := d.Truncate("u", 0); err != nil {
			t.Fatal(err)
		}
		if keys := bucketKeys(t, d); len(keys) != 1 {
			t.Fatalf("bucket holds %v after the segment in place was truncated away", keys)
		}
		body := appendAll(t, d, "u", first)
		// The last of these rewrites the tail, first segment included.
		for i := range maxSegments {
			body = append(body, appendAll(t, d, "u", randomBytes(1<<10+i, uint64(301+i)))...)
		}
		if !seal {
			if err := d.RemoveUpload("u"); err != nil {
				t.Fatal(err)
			}
			if keys := bucketKeys(t, d); len(keys) != 0 {
				t.Fatalf("bucket holds %v after RemoveUpload", keys)
			}
			continue
		}
		sealLeavesTheBytes(t, d, "u", body)
	}
}
