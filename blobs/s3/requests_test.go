package s3

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// delta is what the driver sent during fn, by operation.
func delta(d *Driver, fn func()) map[string]uint64 {
	before := d.Requests()
	fn()
	out := map[string]uint64{}
	for op, n := range d.Requests() {
		if n != before[op] {
			out[op] = n - before[op]
		}
	}
	return out
}

func TestRequestsCountEachOperation(t *testing.T) {
	d := newDriver(t)
	got := delta(d, func() {
		if _, err := d.Stat(digest.FromString("missing")); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("stat of a missing blob: %v", err)
		}
	})
	if len(got) != 1 || got["GetObject"] != 1 {
		t.Fatalf("a Stat sent %v, want one GetObject (the index)", got)
	}

	dg := promoted(t, d, "u1", []byte("some bytes"))
	// Presigning reads the index (one GetObject) and signs without
	// sending: the signed GET is the client's request, not the driver's.
	got = delta(d, func() {
		if _, err := d.PresignGet(dg, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
	if len(got) != 1 || got["GetObject"] != 1 {
		t.Fatalf("a PresignGet sent %v, want one GetObject (the index) and no signed request", got)
	}
	if len(d.Requests()) < 3 {
		t.Fatalf("an upload, seal and promote counted under fewer than 3 operations: %v", d.Requests())
	}
}

// sum is the number of requests in a delta.
func sum(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// commitHeld is a commit as blobs sends it: one hold around the size
// check, Seal, Promote and the removal of the upload.
func commitHeld(t *testing.T, d *Driver, id string, b []byte) digest.Digest {
	t.Helper()
	release := d.Hold(id)
	defer release()
	if _, size, err := d.Checkpoint(id); err != nil || size != int64(len(b)) {
		t.Fatalf("checkpoint: %d %v", size, err)
	}
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(b)
	if created, err := d.Promote(id, dg); err != nil || !created {
		t.Fatalf("promote: %v %v", created, err)
	}
	if err := d.RemoveUpload(id); err != nil {
		t.Fatal(err)
	}
	return dg
}

// exactly fails unless got is want, operation by operation.
func exactly(t *testing.T, what string, got map[string]uint64, want map[string]uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s sent %v, want %v", what, got, want)
		return
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s sent %v, want %v", what, got, want)
			return
		}
	}
}

// The requests of a push of a blob shorter than a part, as blobs sends
// them (the running sha256 as the checkpoint): creating the upload is one
// conditional PUT; the chunk is the state read, the segment (at the data
// object's key) and the state written; the commit moves no bytes, reads
// the state once and writes only the index.
func TestRequestsOfAOneSegmentPush(t *testing.T) {
	d := pingedDriver(t)
	body := randomBytes(1<<20, 7)
	got := delta(d, func() {
		if err := d.CreateUpload("u", "r"); err != nil {
			t.Fatal(err)
		}
	})
	exactly(t, "CreateUpload", got, map[string]uint64{"PutObject": 1})

	run := &running{h: sha256.New()}
	got = delta(d, func() {
		release := d.Hold("u")
		defer release()
		if n, err := d.AppendCheckpoint("u", 0, run.tee(body), run.cp); err != nil || n != int64(len(body)) {
			t.Fatalf("append: %d %v", n, err)
		}
	})
	exactly(t, "an Append of one segment", got, map[string]uint64{"GetObject": 1, "PutObject": 2})

	var dg digest.Digest
	got = delta(d, func() { dg = commitHeld(t, d, "u", body) })
	// The state read once; the index written (conditionally: the server
	// honours it, so the index is not looked for first), and no state:
	// the one the chunk wrote names the digest by its checkpoint, so it
	// needs no mark (Promote); the state deleted, with no listing (the
	// state names all the upload wrote). No GET of the tail, no PUT of
	// the data object, no DELETE of a segment.
	exactly(t, "the commit", got, map[string]uint64{"GetObject": 1, "PutObject": 1, "DeleteObject": 1})

	rc, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, body) {
		t.Fatalf("the blob reads back %d bytes (%v), want the %d pushed", len(back), err, len(body))
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("the bucket holds %v, want the data object and its index", keys)
	}
}

// A blob of several parts: the commit completes the multipart upload with
// the tail as its last part and reads the state once.
func TestRequestsOfAMultipartCommit(t *testing.T) {
	d := pingedDriver(t)
	body := randomBytes(2*MinPartSize+1234, 8)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	run := &running{h: sha256.New()}
	if _, err := d.AppendCheckpoint("u", 0, run.tee(body), run.cp); err != nil {
		t.Fatal(err)
	}
	var dg digest.Digest
	got := delta(d, func() { dg = commitHeld(t, d, "u", body) })
	// The state read; the tail, one segment, copied by the server into the
	// last part (not read back and sent again) and the upload completed;
	// the state written sealed (it no longer names the tail) and the
	// index; the multipart uploads of the data object listed (the state
	// was marked multipart) and the state and the tail deleted.
	exactly(t, "the commit", got, map[string]uint64{
		"GetObject": 1, "PutObject": 2, "UploadPartCopy": 1, "CompleteMultipartUpload": 1,
		"ListMultipartUploads": 1, "DeleteObject": 2,
	})
	if b := readBlob(t, d, dg); !bytes.Equal(b, body) {
		t.Fatalf("the blob reads back %d bytes, want the %d pushed", len(b), len(body))
	}
	if keys := bucketKeys(t, d); len(keys) != 2 {
		t.Fatalf("the bucket holds %v, want the data object and its index", keys)
	}
}
