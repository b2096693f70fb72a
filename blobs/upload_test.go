package blobs

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// failingReader yields data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func uploadsLeft(t *testing.T, s *Store) []string {
	t.Helper()
	ids, err := s.Uploads()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// readBlob reads a blob's bytes through the store.
func readBlob(s *Store, d digest.Digest) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// A chunk whose body fails half-way, or that goes over the size limit,
// leaves the upload exactly as it was: its bytes and its running hash.
func TestAppendFailureLeavesUploadAsItWas(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append("r", id, 0, strings.NewReader("abc"), 0); err != nil || n != 3 {
		t.Fatalf("append: %d, %v", n, err)
	}
	boom := errors.New("connection reset")
	n, err := s.Append("r", id, 3, &failingReader{data: []byte("defg"), err: boom}, 0)
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("failing append: %d, %v; want 3 and the read error", n, err)
	}
	n, err = s.Append("r", id, -1, strings.NewReader("0123456789"), 8)
	if !errors.Is(err, ErrTooLarge) || n != 3 {
		t.Fatalf("append over the limit: %d, %v; want 3, ErrTooLarge", n, err)
	}
	if info, err := s.drv.Upload(id); err != nil || info.Size != 3 {
		t.Fatalf("upload after refused chunks: %+v, %v", info, err)
	}
	if n, err := s.Append("r", id, 3, strings.NewReader("xyz"), 0); err != nil || n != 6 {
		t.Fatalf("append after refused chunks: %d, %v", n, err)
	}
	want := digest.FromString("abcxyz")
	if _, err := s.Commit("r", id, want, 6, func(int64, string, string) error { return nil }); err != nil {
		t.Fatalf("commit of the bytes acknowledged: %v", err)
	}
	if got, _ := readBlob(s, want); string(got) != "abcxyz" {
		t.Fatalf("blob file %q", got)
	}
	if left := uploadsLeft(t, s); len(left) != 0 {
		t.Fatalf("uploads left: %v", left)
	}
}

// Two commits of one digest at once: both succeed, their records are made
// one after the other under the digest's lock, one file holds the bytes,
// and no upload is left.
func TestConcurrentCommitsOfOneDigest(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 50; i++ {
		data := make([]byte, 32<<10)
		rng.Read(data)
		d := digest.FromBytes(data)
		var ids [2]string
		for k := range ids {
			if ids[k], err = s.NewUpload("r"); err != nil {
				t.Fatal(err)
			}
			// One in one piece, the other in chunks.
			if k == 0 {
				_, err = s.Append("r", ids[k], 0, bytes.NewReader(data), 0)
			} else {
				for off := 0; off < len(data) && err == nil; off += 10000 {
					_, err = s.Append("r", ids[k], int64(off), bytes.NewReader(data[off:min(off+10000, len(data))]), 0)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var inRecord, records, overlaps atomic.Int32
		record := func(size int64, _, _ string) error {
			if inRecord.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inRecord.Add(-1)
			records.Add(1)
			if size != int64(len(data)) {
				return errors.New("wrong size")
			}
			// The file is in place before the record is made.
			if got, err := readBlob(s, d); err != nil || !bytes.Equal(got, data) {
				return errors.New("file not in place at record time")
			}
			return nil
		}
		var wg sync.WaitGroup
		var errs [2]error
		start := make(chan struct{})
		for k := range ids {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				<-start
				_, errs[k] = s.Commit("r", ids[k], d, -1, record)
			}(k)
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("iteration %d: commits: %v, %v", i, errs[0], errs[1])
		}
		if records.Load() != 2 || overlaps.Load() != 0 {
			t.Fatalf("iteration %d: %d records, %d overlapping", i, records.Load(), overlaps.Load())
		}
		if got, err := readBlob(s, d); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("iteration %d: blob file: %v", i, err)
		}
		if all, err := s.Blobs(); err != nil || len(all) != i+1 {
			t.Fatalf("iteration %d: %d blobs stored (%v), want %d", i, len(all), err, i+1)
		}
		if left := uploadsLeft(t, s); len(left) != 0 {
			t.Fatalf("iteration %d: uploads left: %v", i, left)
		}
	}
}

// A commit whose record fails removes the file it created, and only that:
// a file another commit put there stays.
func TestCommitRecordFailure(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("database full")
	commit := func(record func(int64, string, string) error) error {
		id, err := s.NewUpload("r")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append("r", id, 0, strings.NewReader("payload"), 0); err != nil {
			t.Fatal(err)
		}
		_, err = s.Commit("r", id, digest.FromString("payload"), 7, record)
		return err
	}
	d := digest.FromString("payload")
	if err := commit(func(int64, string, string) error { return fail }); !errors.Is(err, fail) {
		t.Fatalf("commit: %v, want the record's error", err)
	}
	if has, err := s.Has(d); err != nil || has {
		t.Fatalf("the file of a commit whose record failed is there: %v", err)
	}
	if err := commit(func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := commit(func(int64, string, string) error { return fail }); !errors.Is(err, fail) {
		t.Fatalf("second commit: %v", err)
	}
	if got, err := readBlob(s, d); err != nil || string(got) != "payload" {
		t.Fatalf("a failed commit removed a file it did not create: %v", err)
	}
	// A digest that does not match ends the upload, and makes no file.
	id, _ := s.NewUpload("r")
	s.Append("r", id, 0, strings.NewReader("other"), 0)
	wrong := digest.FromString("not it")
	if _, err := s.Commit("r", id, wrong, -1, func(int64, string, string) error { return nil }); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if has, err := s.Has(wrong); err != nil || has {
		t.Fatalf("a mismatched commit made a file: %v", err)
	}
	if left := uploadsLeft(t, s); len(left) != 0 {
		t.Fatalf("uploads left: %v", left)
	}
}
