package refcount_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// Upload sessions that received nothing for --upload-timeout are removed;
// fresh ones and those caught in a commit are not.
func TestExpireUploads(t *testing.T) {
	// Local blobs: an upload is aged by its data file's mtime.
	reg := regtest.Open(t, regtest.Options{Blobs: regtest.BlobsLocal})
	now := reg.Clock.Now()
	start := func(repo string, age time.Duration) string {
		id, err := reg.StartUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.AppendUpload(repo, id, 0, strings.NewReader("some bytes"), 0); err != nil {
			t.Fatal(err)
		}
		data := localFiles(t, reg.Registry).UploadFile(id)
		if err := os.Chtimes(data, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	old := start("a", 25*time.Hour)
	fresh := start("a", time.Hour)
	edge := start("b", 24*time.Hour-time.Second)
	// A session in the middle of a commit: its bytes promoted to a blob,
	// the blob not recorded yet.
	committing := start("b", 48*time.Hour)
	if _, err := reg.Blobs().Driver().Promote(committing, digest.FromString("some bytes")); err != nil {
		t.Fatal(err)
	}

	if n, err := reg.ExpireUploads(0); n != 0 || err != nil {
		t.Fatalf("timeout 0 removed %d (%v)", n, err)
	}
	n, err := reg.ExpireUploads(24 * time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want 1", n, err)
	}
	if _, err := reg.UploadSize("a", old); !errors.Is(err, blobs.ErrUploadUnknown) {
		t.Errorf("old session: %v, want unknown", err)
	}
	ids, err := reg.Blobs().Uploads()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, old) {
		t.Errorf("old session still stored: %v", ids)
	}
	for _, c := range []struct{ repo, id string }{{"a", fresh}, {"b", edge}} {
		if size, err := reg.UploadSize(c.repo, c.id); err != nil || size != 10 {
			t.Errorf("session %s: %d %v, want kept", c.id, size, err)
		}
	}
	if info, err := reg.Blobs().Driver().Upload(committing); err != nil || info.Promoting == "" {
		t.Errorf("committing session touched: %+v, %v", info, err)
	}
	// The commit never finishes here; a restart recovers what it left, so
	// that the store ends clean.
	reg.Reopen()
	if _, err := reg.Blobs().Driver().Upload(committing); err == nil {
		t.Error("the interrupted commit survived a restart")
	}
}

// Leases that expired while kvreg was down are swept when it starts, and
// the files of what that frees go at once: a registry that then only
// serves reads leaves no file behind a deleted record.
func TestRestartSweepsExpiredLeasesAndTheirFiles(t *testing.T) {
	reg := regtest.Open(t, regtest.Options{UploadGrace: time.Hour})
	data := []byte("uploaded, never referenced")
	d := digest.FromBytes(data)
	if _, err := reg.PutBlob("team/app", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	reg.Clock.Advance(2 * time.Hour)
	reg.Reopen()
	if ok, err := reg.Blobs().Has(d); err != nil || ok {
		t.Fatalf("bytes of the expired upload after the restart: stored %v, %v", ok, err)
	}
	reg.MustClean()
}

// A write sweeps the leases that have expired by its time on its way, also
// when the process learnt of them only by putting them: a finished upload
// nothing references is gone with the first write after its lease, and
// its bytes with it.
func TestWriteSweepsDueLeases(t *testing.T) {
	reg := regtest.Open(t, regtest.Options{UploadGrace: time.Hour})
	put := func(repo, s string) digest.Digest {
		data := []byte(s)
		d := digest.FromBytes(data)
		if _, err := reg.PutBlob(repo, d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := put("team/a", "leased, then forgotten")
	reg.Clock.Advance(30 * time.Minute)
	second := put("team/b", "leased half an hour later")
	reg.Clock.Advance(31 * time.Minute) // first's lease is over, second's is not
	put("team/c", "a write after the first lease ended")
	if ok, err := reg.Blobs().Has(first); err != nil || ok {
		t.Fatalf("bytes of the upload whose lease ended: stored %v, %v", ok, err)
	}
	if ok, err := reg.Blobs().Has(second); err != nil || !ok {
		t.Fatalf("bytes of the upload whose lease runs: stored %v, %v", ok, err)
	}
	reg.Clock.Advance(30 * time.Minute)
	put("team/c", "a write after the second lease ended")
	if ok, err := reg.Blobs().Has(second); err != nil || ok {
		t.Fatalf("bytes of the second upload after its lease: stored %v, %v", ok, err)
	}
}
