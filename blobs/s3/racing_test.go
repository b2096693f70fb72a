package s3_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// racingStores opens three stores on one bucket, as three processes: the
// first through a gate, not armed, that holds a write to a key with part.
func racingStores(t *testing.T, part string) (*s3test.Gate, []*blobs.Store) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	g := s3test.HoldWrites(t, srv.Endpoint, part, false)
	return g, storesAt(t, srv, bucket, g.URL, srv.Endpoint, srv.Endpoint)
}

// Two chunks sent at once to one upload, at the same offset, through two
// processes (a client that breaks the protocol, or one that means harm):
// whichever state is written last, the bytes it names are the ones it
// vouches for, so that a blob committed from it is the bytes of its
// digest. Were both chunks written at one key, the first chunk's state,
// written last, would name the second chunk's bytes, and the first
// chunk's digest would be committed over bytes that are not its own.
func TestRacingAppendsKeepStateAndBytesTogether(t *testing.T) {
	const repo = "team/app"
	const MiB = 1 << 20
	rng := rand.New(rand.NewSource(7))
	fill := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	for _, tc := range []struct {
		name   string
		prefix int // bytes the upload holds before the race
		chunk  int
	}{
		{"first bytes", 0, 100 << 10},
		{"tail segments", 64 << 10, 100 << 10},
		{"parts", 64 << 10, 6 * MiB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, st := racingStores(t, "/state")
			x, y, z := st[0], st[1], st[2]
			prefix, a, b := fill(tc.prefix), fill(tc.chunk), fill(tc.chunk)
			id, err := z.NewUpload(repo)
			if err != nil {
				t.Fatal(err)
			}
			if tc.prefix > 0 {
				if _, err := z.Append(repo, id, 0, bytes.NewReader(prefix), 0); err != nil {
					t.Fatal(err)
				}
			}
			// x writes chunk a and stops before its state; y writes b
			// and its state; then x's state lands, last.
			g.Arm()
			done := make(chan error, 1)
			go func() {
				_, err := x.Append(repo, id, int64(tc.prefix), bytes.NewReader(a), 0)
				done <- err
			}()
			<-g.Held
			if _, err := y.Append(repo, id, int64(tc.prefix), bytes.NewReader(b), 0); err != nil {
				t.Fatal(err)
			}
			g.Release()
			// The state written last vouches for a's bytes. But an
			// upload's first state is written only if none exists (the
			// upload started with none, see driver.Deferrer): then x's
			// chunk, whose state came second, is refused, and y's stands.
			last := a
			if err := <-done; tc.prefix == 0 {
				if !errors.Is(err, blobs.ErrRangeInvalid) {
					t.Fatalf("the first chunk whose state came second: %v, want ErrRangeInvalid", err)
				}
				last = b
			} else if err != nil {
				t.Fatal(err)
			}
			want := digest.FromBytes(append(append([]byte{}, prefix...), last...))
			size := int64(tc.prefix + tc.chunk)
			if _, err := z.Commit(repo, id, want, size, func(int64, string, string) error { return nil }); err != nil {
				t.Fatalf("commit as the digest of the state written last: %v", err)
			}
			for i, s := range st {
				rc, err := s.Open(want)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				if d := digest.FromBytes(got); d != want {
					t.Fatalf("process %d reads blob %s as bytes of %s", i, want, d)
				}
			}
		})
	}
}

// A commit sent twice at once through two processes (a client that
// retries a PUT whose answer is slow): the second finds the index the
// first wrote, naming the upload's own data object, after the first has
// recorded the blob and ended the upload. That index is not the second's
// to take back: were its record to fail, its Unpromote would delete the
// index of a blob the first recorded.
func TestRacingCommitsKeepTheBlob(t *testing.T) {
	const repo = "team/app"
	g, st := racingStores(t, "/blobs/sha256/")
	x, y := st[0], st[1]
	body := bytes.Repeat([]byte("racing commits "), 1000)
	want := digest.FromBytes(body)
	id, err := y.NewUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.Append(repo, id, 0, bytes.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	// x's commit reads the upload and stops at its index; y's commits
	// whole; then x's index write goes on, and its record fails.
	g.Arm()
	failed := errors.New("record refused")
	done := make(chan error, 1)
	go func() {
		_, err := x.Commit(repo, id, want, int64(len(body)), func(int64, string, string) error { return failed })
		done <- err
	}()
	<-g.Held
	if _, err := y.Commit(repo, id, want, int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	g.Release()
	if err := <-done; err == nil {
		t.Fatal("the second commit, whose record failed, succeeded")
	}
	for i, s := range st {
		rc, err := s.Open(want)
		if err != nil {
			t.Fatalf("process %d: the blob the first commit recorded: %v", i, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("process %d reads %d bytes (%v), want the blob's %d", i, len(got), err, len(body))
		}
	}
}
