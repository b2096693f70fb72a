package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// twoProcesses are two drivers over one fresh bucket, as two kvreg
// processes sharing it.
func twoProcesses(t *testing.T) (*Driver, *Driver) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	open := func() *Driver {
		d, err := New(context.Background(), Config{
			Bucket: bucket, Prefix: "kvreg", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return open(), open()
}

// pushed is an upload of body in one chunk with the running sha256 as its
// checkpoint, as blobs sends it, then sealed and promoted to its digest
// under one hold; the process dies (the hold ends) before the upload is
// removed. It returns the digest and what Promote sent.
func pushed(t *testing.T, d *Driver, id string, body []byte) (digest.Digest, map[string]uint64) {
	t.Helper()
	if err := d.CreateUpload(id, "r"); err != nil {
		t.Fatal(err)
	}
	run := &running{h: sha256.New()}
	if _, err := d.AppendCheckpoint(id, 0, run.tee(body), run.cp); err != nil {
		t.Fatal(err)
	}
	release := d.Hold(id)
	defer release()
	if err := d.Seal(id); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(body)
	var created bool
	got := delta(d, func() {
		var err error
		if created, err = d.Promote(id, dg); err != nil {
			t.Fatal(err)
		}
	})
	if !created {
		t.Fatal("Promote found a blob of a digest never pushed")
	}
	return dg, got
}

// Promote to the digest the upload's checkpoint is of writes the index
// and no state: the state the last Append wrote names the digest. A
// process that dies right after is found promoting by another, which
// tells its blob apart and unpromotes it, leaving nothing.
func TestPromoteUnmarkedThenCrashUnrecorded(t *testing.T) {
	a, b := twoProcesses(t)
	body := randomBytes(3000, 11)
	dg, sent := pushed(t, a, "u", body)
	if len(sent) != 1 || sent["PutObject"] != 1 {
		t.Fatalf("Promote sent %v, want one PutObject (the index) and no state", sent)
	}
	info, err := b.Upload("u")
	if err != nil || info.Promoting != dg {
		t.Fatalf("the upload after the crash: %+v %v; want promoting to %s", info, err, dg)
	}
	if ok, err := b.Promoted("u", dg); err != nil || !ok {
		t.Fatalf("Promoted: %v %v, want the blob told as the upload's", ok, err)
	}
	if err := b.Unpromote("u", dg); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Upload("u"); err != nil || info.Promoting != "" {
		t.Fatalf("the upload after Unpromote: %+v %v; want promoting to nothing", info, err)
	}
	if err := b.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	if keys := bucketKeys(t, b); len(keys) != 0 {
		t.Fatalf("the bucket holds %v, want nothing", keys)
	}
}

// The same crash after the blob was recorded: removing the upload keeps
// the data object its index names.
func TestPromoteUnmarkedThenCrashRecorded(t *testing.T) {
	a, b := twoProcesses(t)
	body := randomBytes(3000, 12)
	dg, _ := pushed(t, a, "u", body)
	if err := b.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, dg); !bytes.Equal(got, body) {
		t.Fatalf("the blob reads back %d bytes, want %d", len(got), len(body))
	}
	if keys := bucketKeys(t, b); len(keys) != 2 {
		t.Fatalf("the bucket holds %v, want the data object and its index", keys)
	}
}

// The client sends the commit again to another process after the crash:
// the index there is the upload's own, so its Promote created the blob,
// and removing the upload keeps its bytes.
func TestPromoteAgainAfterCrash(t *testing.T) {
	for _, marked := range []bool{false, true} {
		a, b := twoProcesses(t)
		body := randomBytes(3000, 13)
		var dg digest.Digest
		if marked {
			// No checkpoint: Promote marks the state first.
			if err := a.CreateUpload("u", "r"); err != nil {
				t.Fatal(err)
			}
			appendAll(t, a, "u", body)
			if err := a.Seal("u"); err != nil {
				t.Fatal(err)
			}
			dg = digest.FromBytes(body)
			if created, err := a.Promote("u", dg); err != nil || !created {
				t.Fatalf("promote: %v %v", created, err)
			}
		} else {
			dg, _ = pushed(t, a, "u", body)
		}
		release := b.Hold("u")
		if err := b.Seal("u"); err != nil {
			t.Fatal(err)
		}
		if created, err := b.Promote("u", dg); err != nil || !created {
			t.Fatalf("marked %v: Promote again: %v %v, want the blob as the upload's", marked, created, err)
		}
		if err := b.RemoveUpload("u"); err != nil {
			t.Fatal(err)
		}
		release()
		if got := readBlob(t, b, dg); !bytes.Equal(got, body) {
			t.Fatalf("marked %v: the blob reads back %d bytes, want %d", marked, len(got), len(body))
		}
		if keys := bucketKeys(t, b); len(keys) != 2 {
			t.Fatalf("marked %v: the bucket holds %v, want the data object and its index", marked, keys)
		}
	}
}

// Another upload promoted the digest first: Promote writes no state and
// creates nothing, and removing the upload deletes its own bytes only.
func TestPromoteUnmarkedFindsAnotherBlob(t *testing.T) {
	a, b := twoProcesses(t)
	body := randomBytes(3000, 14)
	dg, _ := pushed(t, a, "first", body)
	if err := a.RemoveUpload("first"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateUpload("second", "r"); err != nil {
		t.Fatal(err)
	}
	run := &running{h: sha256.New()}
	if _, err := b.AppendCheckpoint("second", 0, run.tee(body), run.cp); err != nil {
		t.Fatal(err)
	}
	release := b.Hold("second")
	if err := b.Seal("second"); err != nil {
		t.Fatal(err)
	}
	var created bool
	sent := delta(b, func() {
		var err error
		if created, err = b.Promote("second", dg); err != nil {
			t.Fatal(err)
		}
	})
	if created {
		t.Fatal("Promote created a blob another upload had")
	}
	if sent["PutObject"] != 1 {
		t.Errorf("Promote sent %v, want one PutObject (the index, refused) and no state", sent)
	}
	if info, err := a.Upload("second"); err != nil || info.Promoting != "" {
		t.Fatalf("the second upload: %+v %v; want promoting to nothing", info, err)
	}
	if err := b.RemoveUpload("second"); err != nil {
		t.Fatal(err)
	}
	release()
	if got := readBlob(t, a, dg); !bytes.Equal(got, body) {
		t.Fatalf("the blob reads back %d bytes, want %d", len(got), len(body))
	}
	if keys := bucketKeys(t, a); len(keys) != 2 {
		t.Fatalf("the bucket holds %v, want the first upload's data object and the index", keys)
	}
}

// An upload promoted without a mark whose blob was then removed (by hand,
// or a damaged store repaired) is dead: its data object is gone. It still
// reads as promoting, so that it is finished as an interrupted commit,
// and removing it leaves nothing of it.
func TestPromoteUnmarkedBlobRemoved(t *testing.T) {
	a, b := twoProcesses(t)
	body := randomBytes(3000, 15)
	dg, _ := pushed(t, a, "u", body)
	if err := b.Remove(dg); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Upload("u"); err != nil || info.Promoting != dg {
		t.Fatalf("the upload after its blob's removal: %+v %v; want promoting to %s", info, err, dg)
	}
	if ok, err := b.Promoted("u", dg); err != nil || ok {
		t.Fatalf("Promoted: %v %v, want false (no index)", ok, err)
	}
	if err := b.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	if keys := bucketKeys(t, b); len(keys) != 0 {
		t.Fatalf("the bucket holds %v, want nothing", keys)
	}
}

// Uploads in progress whose bytes so far are a blob that another upload
// stored are not promoting: one in place (its data object is there) and
// one of parts and a tail (no data object until Seal).
func TestUploadOfAStoredBlobIsNotPromoting(t *testing.T) {
	a, b := twoProcesses(t)
	for _, body := range [][]byte{randomBytes(3000, 16), randomBytes(MinPartSize+3000, 17)} {
		dg, _ := pushed(t, a, "first", body)
		if err := a.RemoveUpload("first"); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateUpload("second", "r"); err != nil {
			t.Fatal(err)
		}
		run := &running{h: sha256.New()}
		if _, err := b.AppendCheckpoint("second", 0, run.tee(body), run.cp); err != nil {
			t.Fatal(err)
		}
		if info, err := a.Upload("second"); err != nil || info.Promoting != "" || info.Size != int64(len(body)) {
			t.Fatalf("an upload of %d bytes in progress: %+v %v; want promoting to nothing", len(body), info, err)
		}
		if err := b.RemoveUpload("second"); err != nil {
			t.Fatal(err)
		}
		if got := readBlob(t, a, dg); !bytes.Equal(got, body) {
			t.Fatalf("the blob reads back %d bytes, want %d", len(got), len(body))
		}
		if err := a.Remove(dg); err != nil {
			t.Fatal(err)
		}
	}
	if keys := bucketKeys(t, a); len(keys) != 0 {
		t.Fatalf("the bucket holds %v, want nothing", keys)
	}
}
