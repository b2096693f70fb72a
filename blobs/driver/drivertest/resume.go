package drivertest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// resumeSize crosses two boundaries of S3's smallest part (5 MiB), so
// that a driver with parts holds full ones when a Store is reopened.
const resumeSize = 12<<20 + 13

// An upload is resumed by a new Store over the same driver, as after a
// restart of kvreg, after each chunk and after a refused one, and commits
// with the right digest. A driver that cannot read an upload back before
// Seal passes only if it keeps a checkpoint (driver.Checkpointer).
func testResumeAfterRestart(t *testing.T, d driver.Driver) {
	body := make([]byte, resumeSize)
	rng := rand.NewChaCha8([32]byte{'r', 'e', 's', 'u', 'm', 'e'})
	rng.Read(body)
	cuts := []int{0, 5<<20 + 7, 6 << 20, 11<<20 + 1, len(body)}
	id, err := blobs.New(d).NewUpload("repo")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(cuts); i++ {
		s := blobs.New(d)
		if n, err := s.UploadSize("repo", id); err != nil || n != int64(cuts[i-1]) {
			t.Fatalf("chunk %d: a new Store sees %d bytes, %v; want %d", i, n, err, cuts[i-1])
		}
		if i == 2 {
			// A chunk longer than its range is refused whole, and the
			// upload resumes where it was.
			_, err := s.AppendExact("repo", id, int64(cuts[1]), 3, bytes.NewReader(body[cuts[1]:cuts[2]]), 0)
			if !errors.Is(err, blobs.ErrSizeInvalid) {
				t.Fatalf("a chunk longer than its range: %v", err)
			}
			s = blobs.New(d)
		}
		n, err := s.Append("repo", id, int64(cuts[i-1]), bytes.NewReader(body[cuts[i-1]:cuts[i]]), 0)
		if err != nil || n != int64(cuts[i]) {
			t.Fatalf("chunk %d: %d, %v", i, n, err)
		}
	}
	want := digest.FromBytes(body)
	s := blobs.New(d)
	n, err := s.Commit("repo", id, want, int64(len(body)), func(int64, string, string) error { return nil })
	if err != nil || n != int64(len(body)) {
		t.Fatalf("commit after restarts: %d, %v", n, err)
	}
	if got := read(t, d, want); !bytes.Equal(got, body) {
		t.Fatalf("the blob holds %d bytes that differ from the upload's %d", len(got), len(body))
	}
}
