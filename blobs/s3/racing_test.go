package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// gate is an S3 endpoint in front of the test server that, once armed,
// holds the next write to a key ending in suffix until released: the
// moment between two requests of one operation, stretched.
type gate struct {
	URL     string
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func newGate(t *testing.T, endpoint, suffix string) *gate {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{held: make(chan struct{}), release: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, suffix) && g.armed.CompareAndSwap(true, false) {
			close(g.held)
			<-g.release
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// racingStores opens three stores on one bucket, as three processes: the
// first through a gate that holds writes to keys with suffix.
func racingStores(t *testing.T, suffix string) (*gate, []*blobs.Store) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	g := newGate(t, srv.Endpoint, suffix)
	var out []*blobs.Store
	for _, ep := range []string{g.URL, srv.Endpoint, srv.Endpoint} {
		d, err := s3.New(context.Background(), s3.Config{
			Bucket: bucket, Prefix: "kvreg", Endpoint: ep, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3.MinPartSize,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, blobs.New(d))
	}
	return g, out
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
			g.armed.Store(true)
			done := make(chan error, 1)
			go func() {
				_, err := x.Append(repo, id, int64(tc.prefix), bytes.NewReader(a), 0)
				done <- err
			}()
			<-g.held
			if _, err := y.Append(repo, id, int64(tc.prefix), bytes.NewReader(b), 0); err != nil {
				t.Fatal(err)
			}
			close(g.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			// The state written last vouches for a's bytes.
			want := digest.FromBytes(append(append([]byte{}, prefix...), a...))
			size := int64(tc.prefix + tc.chunk)
			if _, err := z.Commit(repo, id, want, size, func(int64) error { return nil }); err != nil {
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
	g.armed.Store(true)
	failed := errors.New("record refused")
	done := make(chan error, 1)
	go func() {
		_, err := x.Commit(repo, id, want, int64(len(body)), func(int64) error { return failed })
		done <- err
	}()
	<-g.held
	if _, err := y.Commit(repo, id, want, int64(len(body)), func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	close(g.release)
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
