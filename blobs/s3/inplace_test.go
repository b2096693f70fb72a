package s3

import (
	"bytes"
	"io"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// commitBare seals, promotes and removes an upload with no hold, as a
// process reading every state from the bucket would, and checks that the
// blob reads back as want.
func commitBare(t *testing.T, d *Driver, id string, want []byte) {
	t.Helper()
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(want)
	if created, err := d.Promote(id, dg); err != nil || !created {
		t.Fatalf("promote: %v %v", created, err)
	}
	if err := d.RemoveUpload(id); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the blob reads back %d bytes (%v), want %d", len(got), err, len(want))
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("the bucket holds %v, want the data object and its index", keys)
	}
}

// A Seal of a segment in place, under a hold, writes nothing: a process
// that dies before Promote leaves the upload as it was before Seal, which
// reads back, names its data object (no stray), and commits again.
func TestSealInPlaceThenCrash(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	body := appendAll(t, d, "u", randomBytes(3000, 1))
	release := d.Hold("u")
	if _, size, err := d.Checkpoint("u"); err != nil || size != int64(len(body)) {
		t.Fatalf("checkpoint: %d %v", size, err)
	}
	got := delta(d, func() {
		if err := d.Seal("u"); err != nil {
			t.Fatal(err)
		}
	})
	if len(got) != 0 {
		t.Fatalf("Seal of a segment in place, held, sent %v; want nothing", got)
	}
	release() // the process dies here

	info, err := d.Upload("u")
	if err != nil || info.Size != int64(len(body)) || info.Promoting != "" {
		t.Fatalf("the upload after the crash: %+v %v", info, err)
	}
	if b := readUpload(t, d, "u"); !bytes.Equal(b, body) {
		t.Fatalf("the upload reads back %d bytes, want %d", len(b), len(body))
	}
	if err := d.Strays(func(s driver.Stray) error { t.Errorf("stray %+v", s); return nil }); err != nil {
		t.Fatal(err)
	}
	commitBare(t, d, "u", body)

	// Removed instead, it leaves nothing.
	if err := d.CreateUpload("v", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "v", randomBytes(10, 2))
	if err := d.RemoveUpload("v"); err != nil {
		t.Fatal(err)
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("the bucket holds %v after the removal, want the first blob only", keys)
	}
}

// The segment in place is read into the first part when a later chunk
// fills one, and stays named by the previous bytes; neither dropping the
// tail after the next Append nor Seal's completion of the multipart upload
// over it (right after that chunk, so the previous bytes name it still)
// deletes the data object.
func TestSegmentInPlaceThenParts(t *testing.T) {
	for name, chunks := range map[string][][]byte{
		"sealed after the part":  {randomBytes(1000, 3), randomBytes(MinPartSize, 4)},
		"a chunk after the part": {randomBytes(1000, 3), randomBytes(MinPartSize, 4), randomBytes(500, 5)},
	} {
		t.Run(name, func(t *testing.T) {
			d := newDriver(t)
			if err := d.CreateUpload("u", "r"); err != nil {
				t.Fatal(err)
			}
			commitBare(t, d, "u", appendAll(t, d, "u", chunks...))
		})
	}
}

// An Append in place undone by Truncate, then another: the second one's
// bytes are the upload's, at the same key.
func TestSegmentInPlaceUndone(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "u", randomBytes(700, 6))
	if err := d.Truncate("u", 0); err != nil {
		t.Fatal(err)
	}
	if b := readUpload(t, d, "u"); len(b) != 0 {
		t.Fatalf("the upload holds %d bytes after the undo, want none", len(b))
	}
	body := appendAll(t, d, "u", randomBytes(2000, 7), randomBytes(40, 8))
	if b := readUpload(t, d, "u"); !bytes.Equal(b, body) {
		t.Fatalf("the upload reads back %d bytes, want %d", len(b), len(body))
	}
	commitBare(t, d, "u", body)
}

// The segment in place counts as upload bytes, not as a blob's, until the
// upload is committed.
func TestUsageOfASegmentInPlace(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	body := appendAll(t, d, "u", randomBytes(1500, 9))
	u, err := d.Usage()
	if err != nil || u.UploadBytes != int64(len(body)) || u.BlobBytes != 0 || u.BlobObjects != 0 {
		t.Fatalf("usage of an upload of one segment: %+v %v; want %d upload bytes, no blob", u, err, len(body))
	}
	commitBare(t, d, "u", body)
	u, err = d.Usage()
	if err != nil || u.UploadBytes != 0 || u.BlobBytes != int64(len(body)) || u.BlobObjects != 1 {
		t.Fatalf("usage after the commit: %+v %v; want %d blob bytes in one object", u, err, len(body))
	}
}
