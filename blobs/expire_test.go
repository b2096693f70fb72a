package blobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// An upload that the sweep of idle uploads lists as idle, and that takes
// a chunk before the sweep holds it, is kept: the sweep reads it again
// under its locks. The chunk's bytes are in the blob it is committed as.
func TestExpireKeepsAnUploadThatTookAChunkSinceItWasListed(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("r", id, 0, strings.NewReader("first "), 0); err != nil {
		t.Fatal(err)
	}
	id = UploadRef(id, 1)
	// Its bytes are two days old.
	old := time.Now().Add(-48 * time.Hour)
	err = filepath.Walk(filepath.Join(root, "uploads"), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	s.expiring = func(string) {
		listed++
		if _, err := s.Append("r", id, 6, strings.NewReader("second"), 0); err != nil {
			t.Errorf("chunk between the listing and the expiry: %v", err)
		}
	}
	n, err := s.ExpireUploads(time.Now().Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if listed != 1 || n != 0 {
		t.Fatalf("the sweep listed %d idle uploads and ended %d; want 1 listed and none ended", listed, n)
	}
	s.expiring = nil
	d := digest.FromString("first second")
	if _, err := s.Commit("r", id, d, -1, func(int64, string, string) error { return nil }); err != nil {
		t.Fatalf("commit of the upload kept: %v", err)
	}
	if got, err := readBlob(s, d); err != nil || string(got) != "first second" {
		t.Fatalf("blob: %q, %v", got, err)
	}
}
