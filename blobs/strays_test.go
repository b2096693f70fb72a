package blobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/local"
)

// Over the directory: Usage counts blob files and uploads' bytes, and
// RemoveStrays takes the strays last written before its cutoff only.
func TestUsageAndStrayCutoff(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	committed(t, s, "a blob")
	open, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("r", open, 0, strings.NewReader("half"), 0); err != nil {
		t.Fatal(err)
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.BlobBytes != 6 || u.BlobObjects != 1 || u.UploadBytes != 4 {
		t.Fatalf("usage %+v, want 6 blob bytes in 1 file and 4 upload bytes", u)
	}

	// Two strays (upload directories CreateUpload left without their
	// repo file), an hour apart.
	uploads := filepath.Dir(filepath.Dir(s.Driver().(*local.Driver).UploadFile("x")))
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, name := range []string{"old", "new"} {
		dir := filepath.Join(uploads, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		when := at.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := s.RemoveStrays(at.Add(30 * time.Minute))
	if err != nil || len(gone) != 1 || gone[0].Name != "old" {
		t.Fatalf("removed %+v, %v; want old only", gone, err)
	}
	left, err := s.Strays(at.Add(2 * time.Hour))
	if err != nil || len(left) != 1 || left[0].Name != "new" {
		t.Fatalf("strays left %+v, %v; want new only", left, err)
	}
	if _, err := s.UploadSize("r", open); err != nil {
		t.Fatalf("the upload in progress after removing strays: %v", err)
	}
}
