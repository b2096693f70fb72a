package regtest_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	c := regtest.NewClock()
	if !c.Now().Equal(regtest.Start) {
		t.Fatalf("new clock at %v, want %v", c.Now(), regtest.Start)
	}
	c.Advance(90 * time.Minute)
	if got := c.Now().Sub(regtest.Start); got != 90*time.Minute {
		t.Fatalf("advanced by %v, want 90m", got)
	}
}

func TestUnknownBackendIsAnError(t *testing.T) {
	t.Setenv(regtest.EnvBackends, "bolt,nosuch")
	if _, err := regtest.Backends(); err == nil {
		t.Fatal("an unknown backend name was accepted")
	}
	t.Setenv(regtest.EnvBackends, "")
	t.Setenv(regtest.EnvBlobs, "")
	bs, err := regtest.Backends()
	if err != nil || len(bs) != 1 || bs[0] != regtest.Default() {
		t.Fatalf("default backends: %v, %v", bs, err)
	}
	t.Setenv(regtest.EnvBlobs, "nosuch")
	if _, err := regtest.Backends(); err == nil {
		t.Fatal("an unknown blob store was accepted")
	}
	t.Setenv(regtest.EnvBackends, "bolt,postgres")
	t.Setenv(regtest.EnvBlobs, "s3")
	bs, err = regtest.Backends()
	if err != nil || len(bs) != 2 || bs[0].Blob != regtest.BlobsS3 || bs[1].Blob != regtest.BlobsS3 {
		t.Fatalf("backends on s3: %v, %v", bs, err)
	}
}

// StoredFiles sees a blob's bytes where the chosen store keeps them (the
// bucket's directory on the S3 server, or the data directory), and sees
// them go when the blob is freed; a pinned local store keeps them under
// Root whatever the environment chose.
func TestStoredFilesFollowTheBlob(t *testing.T) {
	for _, pin := range []string{"", regtest.BlobsLocal} {
		t.Run("pin="+pin, func(t *testing.T) {
			r := regtest.Open(t, regtest.Options{Blobs: pin, UploadGrace: time.Hour})
			if pin != "" && r.Backend.Blob != pin {
				t.Fatalf("pinned %s, got %s", pin, r.Backend.Blob)
			}
			if _, isS3 := r.Blobs().Driver().(interface{ PartSize() int64 }); isS3 != (r.Backend.Blob == regtest.BlobsS3) {
				t.Fatalf("blob store %s runs on a %T", r.Backend.Blob, r.Blobs().Driver())
			}
			before := r.StoredBytes()
			data := bytes.Repeat([]byte("stored "), 1000)
			d := digest.FromBytes(data)
			if _, err := r.PutBlob("lib/a", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
				t.Fatal(err)
			}
			// The S3 driver keeps the bytes under a name of its own and an
			// index object under the digest: look for the size.
			var found bool
			for _, size := range r.StoredFiles() {
				if size == int64(len(data)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("the blob's %d bytes are not among the stored files %v", len(data), r.StoredFiles())
			}
			r.Clock.Advance(2 * time.Hour)
			if _, err := r.Sweep(100); err != nil {
				t.Fatal(err)
			}
			if after := r.StoredBytes(); after != before {
				t.Fatalf("stored bytes %d before the blob, %d after it was freed: %v", before, after, r.StoredFiles())
			}
		})
	}
}

// A registry survives a reopen with its blob, and the clock drives leases:
// a finished upload that nothing references is gone once its lease expires
// and a sweep runs.
func TestOpenReopenAndLeaseExpiry(t *testing.T) {
	r := regtest.Open(t, regtest.Options{UploadGrace: time.Hour})
	data := []byte("regtest blob")
	d := digest.FromBytes(data)
	if _, err := r.PutBlob("lib/a", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		t.Fatal(err)
	}
	r.Reopen()
	if size, err := r.StatBlob("lib/a", d, false, ""); err != nil || size != int64(len(data)) {
		t.Fatalf("after reopen: size %d, %v", size, err)
	}
	r.MustClean()
	r.Clock.Advance(2 * time.Hour)
	if _, err := r.Sweep(100); err != nil {
		t.Fatal(err)
	}
	if _, err := r.StatBlob("lib/a", d, false, ""); err == nil {
		t.Fatal("the blob outlived its lease")
	}
}

func TestMain(m *testing.M) { os.Exit(regtest.Run(m)) }
