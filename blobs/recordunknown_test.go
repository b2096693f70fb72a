package blobs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// A commit whose record may or may not have been stored (the database's
// commit was cut off, ErrRecordUnknown) keeps the blob's bytes: recorded
// after all, the blob reads whole, and the sweep of interrupted commits
// then only removes the upload; not recorded, that sweep removes the
// blob it promoted and the upload, as after a process that died there;
// and the client's retry of the commit, on any process, records it.
func TestCommitRecordOutcomeUnknown(t *testing.T) {
	stores := map[string]func(t *testing.T) *Store{
		"directory": func(t *testing.T) *Store {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) *Store {
			srv, bucket := s3test.Bucket(t)
			return New(s3Driver(t, srv, bucket))
		},
	}
	for name, open := range stores {
		for _, c := range []struct {
			outcome  string
			recorded bool
			retry    bool
		}{{"recorded", true, false}, {"not recorded", false, false}, {"retried", false, true}} {
			t.Run(name+"/"+c.outcome, func(t *testing.T) {
				s := open(t)
				body := "payload of " + c.outcome
				d := digest.FromString(body)
				id, err := s.NewUpload("r")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Append("r", id, 0, strings.NewReader(body), 0); err != nil {
					t.Fatal(err)
				}
				id = UploadRef(id, 1)
				cut := fmt.Errorf("%w: the connection was cut at COMMIT", ErrRecordUnknown)
				if _, err := s.Commit("r", id, d, -1, func(int64, string, string) error { return cut }); !errors.Is(err, ErrRecordUnknown) {
					t.Fatalf("commit: %v, want the record's ErrRecordUnknown", err)
				}
				if got, err := readBlob(s, d); err != nil || string(got) != body {
					t.Fatalf("blob after a record of unknown outcome: %q, %v; want its bytes kept", got, err)
				}
				retried := false
				if c.retry {
					// A driver that moved the upload's bytes into the
					// blob at the promotion (a directory's rename) no
					// longer has the upload: its client starts over.
					_, err := s.Commit("r", id, d, -1, func(int64, string, string) error { return nil })
					if err != nil && !(name == "directory" && errors.Is(err, ErrUploadUnknown)) {
						t.Fatalf("the client's retry of the commit: %v", err)
					}
					retried = err == nil
					t.Logf("the client's retry of the commit: %v", err)
				}
				recorded := func(digest.Digest) (bool, error) { return c.recorded || retried, nil }
				if _, err := s.FinishInterrupted(time.Now().Add(time.Hour), recorded); err != nil {
					t.Fatal(err)
				}
				got, err := readBlob(s, d)
				switch {
				case c.recorded || retried:
					if err != nil || string(got) != body {
						t.Fatalf("recorded blob after the sweep: %q, %v", got, err)
					}
				case !errors.Is(err, ErrNotFound):
					t.Fatalf("blob that was not recorded, after the sweep: %q, %v; want ErrNotFound", got, err)
				}
				if left := uploadsLeft(t, s); len(left) != 0 {
					t.Fatalf("uploads left after the sweep: %v", left)
				}
			})
		}
	}
}
