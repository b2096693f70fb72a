package blobs

import (
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Over the directory, a blob's reader is the file itself: copying it into
// a connection then uses sendfile.
func TestOpenOverTheDirectoryIsAFile(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := committed(t, s, "served")
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*os.File); !ok {
		t.Fatalf("reader is %T, want *os.File", f)
	}
	if ok, err := s.Verify(d); err != nil || !ok {
		t.Fatalf("verify: %v, %v", ok, err)
	}
}

// committed uploads body to s in repository "r" and commits it.
func committed(t *testing.T, s *Store, body string) digest.Digest {
	t.Helper()
	id, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("r", id, 0, strings.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString(body)
	if _, err := s.Commit("r", id, d, -1, func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return d
}
