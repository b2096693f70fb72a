package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// counted is an S3 endpoint in front of the test server that counts the
// requests through it.
type counted struct {
	URL string
	n   atomic.Int64
}

func countRequests(t *testing.T, endpoint string) *counted {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The client signs the Host it dials; the server checks the Host it
	// receives, which the proxy leaves as it came.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// replicaStores opens n blobs.Stores, each over its own driver, on one
// bucket: what n kvreg processes sharing the bucket hold.
func replicaStores(t *testing.T, n int) ([]*blobs.Store, *counted) {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	ep := countRequests(t, srv.Endpoint)
	eps := make([]string, n)
	for i := range eps {
		eps[i] = ep.URL
	}
	return storesAt(t, srv, bucket, eps...), ep
}

// storesAt opens a blobs.Store per endpoint, each over its own driver, on
// one bucket of srv.
func storesAt(t *testing.T, srv s3test.Server, bucket string, endpoints ...string) []*blobs.Store {
	t.Helper()
	var out []*blobs.Store
	for _, ep := range endpoints {
		d, err := s3.New(context.Background(), s3.Config{
			Bucket: bucket, Prefix: "kvreg", Endpoint: ep, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3.MinPartSize,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, blobs.New(d))
	}
	return out
}

// A chunked upload whose chunks land on two processes in turn (A, B, A,
// ...), some crossing part boundaries, some without a start: every process
// catches up from the upload's state, and the blob has the right digest.
func TestUploadAcrossProcesses(t *testing.T) {
	st, ep := replicaStores(t, 2)
	a, b := st[0], st[1]
	const MiB = 1 << 20
	data := make([]byte, 19*MiB+123)
	rand.New(rand.NewSource(1)).Read(data)
	want := digest.FromBytes(data)

	id, err := a.NewUpload("team/app")
	if err != nil {
		t.Fatal(err)
	}
	chunks := []struct {
		on    *blobs.Store
		size  int
		start bool // sends where it starts (Content-Range)
	}{
		{a, 1 * MiB, true}, {b, 4 * MiB, true}, {a, 7*MiB + 5, true}, {a, 17, false},
		{b, 2 * MiB, false}, {a, 3 * MiB, true}, {b, 100, true},
	}
	at := 0
	for i, c := range chunks {
		start := int64(-1)
		if c.start {
			start = int64(at)
		}
		before := ep.n.Load()
		n, err := c.on.Append("team/app", id, start, bytes.NewReader(data[at:at+c.size]), 0)
		if err != nil {
			t.Fatalf("chunk %d (%d bytes at %d): %v", i, c.size, at, err)
		}
		at += c.size
		if n != int64(at) {
			t.Fatalf("chunk %d: upload holds %d bytes, want %d", i, n, at)
		}
		t.Logf("chunk %d: %d bytes, %d S3 requests", i, c.size, ep.n.Load()-before)
		// The other process tells the client the same size.
		other := a
		if c.on == a {
			other = b
		}
		if got, err := other.UploadSize("team/app", id); err != nil || got != int64(at) {
			t.Fatalf("chunk %d: the other process says %d bytes (%v), want %d", i, got, err, at)
		}
	}
	// A chunk that starts where a stale process thought the upload ended
	// is refused, and leaves the upload as it was.
	if _, err := a.Append("team/app", id, 5, bytes.NewReader([]byte("stale")), 0); !errors.Is(err, blobs.ErrRangeInvalid) {
		t.Fatalf("chunk at a stale offset: %v, want ErrRangeInvalid", err)
	}
	rest := data[at:]
	if _, err := b.Append("team/app", id, int64(at), bytes.NewReader(rest), 0); err != nil {
		t.Fatal(err)
	}
	// Commit on the process that saw the upload least recently.
	size, err := a.Commit("team/app", id, want, int64(len(data)), func(int64, string, string) error { return nil })
	if err != nil || size != int64(len(data)) {
		t.Fatalf("commit: %d %v", size, err)
	}
	for _, s := range st {
		rc, err := s.Open(want)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if got := digest.NewDigest(digest.SHA256, h); got != want {
			t.Fatalf("blob reads as %s, want %s", got, want)
		}
	}
	// The other process learns that the upload is over.
	if _, err := b.UploadSize("team/app", id); !errors.Is(err, blobs.ErrUploadUnknown) {
		t.Fatalf("upload after its commit elsewhere: %v, want ErrUploadUnknown", err)
	}
}

// What the check costs: an append to a session this process holds current
// asks S3 nothing more than one through a single process; one that
// another process moved on costs a read of the upload's state or two.
func TestUploadAcrossProcessesRequests(t *testing.T) {
	st, ep := replicaStores(t, 2)
	a, b := st[0], st[1]
	chunk := bytes.Repeat([]byte("k"), 64<<10)
	cost := func(s *blobs.Store, id string, start int64) int64 {
		t.Helper()
		before := ep.n.Load()
		if _, err := s.Append("r", id, start, bytes.NewReader(chunk), 0); err != nil {
			t.Fatal(err)
		}
		return ep.n.Load() - before
	}
	for _, withStart := range []bool{true, false} {
		id, err := a.NewUpload("r")
		if err != nil {
			t.Fatal(err)
		}
		pos := func(k int64) int64 {
			if withStart {
				return k * int64(len(chunk))
			}
			return -1
		}
		cost(a, id, pos(0))
		// As its client names it once it has bytes: by its id.
		id = blobs.UploadRef(id, int64(len(chunk)))
		cost(a, id, pos(1))
		current := cost(a, id, pos(2)) // a's session is current
		cost(b, id, pos(3))
		cost(b, id, pos(4))
		cost(b, id, pos(5))
		stale := cost(a, id, pos(6)) // a's session is three chunks behind
		t.Logf("with start %v: append to a current session: %d requests, to a stale one: %d", withStart, current, stale)
		// With its start the chunk shows the session behind before the
		// driver is asked: one read of the state. Without, the driver
		// refuses the append first: that read, and the retry's.
		more := int64(1)
		if !withStart {
			more = 2
		}
		if stale > current+more {
			t.Errorf("with start %v: a stale session costs %d requests, a current one %d: want at most %d more", withStart, stale, current, more)
		}
		if err := a.Cancel("r", id); err != nil {
			t.Fatal(err)
		}
	}
}
