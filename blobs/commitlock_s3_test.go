package blobs

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// sharedLocks is a lock per digest shared by stores, as the database's
// advisory locks are by kvreg's processes.
type sharedLocks struct {
	mu sync.Mutex
	m  map[digest.Digest]*sync.Mutex
}

func (l *sharedLocks) lock(d digest.Digest) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[digest.Digest]*sync.Mutex{}
	}
	m := l.m[d]
	if m == nil {
		m = &sync.Mutex{}
		l.m[d] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock, nil
}

// A commit sent twice at once through two processes (a client that
// retries a slow PUT): the second waits for the digest's lock while the
// first commits, and the blob is then freed and its bytes removed. The
// second reads the upload only under the lock, finds it ended, and
// promotes nothing: read before the lock, it would promote the upload
// again, from what it was, and record a blob whose bytes are gone.
func TestS3CommitReadsTheUploadUnderTheLock(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var locks sharedLocks
	x, y := New(s3Driver(t, srv, bucket)), New(s3Driver(t, srv, bucket))
	x.SetSharedLock(locks.lock)
	atLock, release := make(chan struct{}), make(chan struct{})
	var gate sync.Once
	y.SetSharedLock(func(d digest.Digest) (func(), error) {
		gate.Do(func() {
			close(atLock)
			<-release
		})
		return locks.lock(d)
	})
	const repo = "team/app"
	body := bytes.Repeat([]byte("committed twice "), 1000)
	dg := digest.FromBytes(body)
	id := youngUpload(t, x, repo, body)

	recorded := 0
	done := make(chan error, 1)
	go func() {
		_, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string) error { recorded++; return nil })
		done <- err
	}()
	<-atLock
	if _, err := x.Commit(repo, id, dg, int64(len(body)), func(int64, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	unlock, err := x.Lock(dg)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Remove(dg); err != nil {
		t.Fatal(err)
	}
	unlock()
	close(release)
	if err := <-done; !errors.Is(err, ErrUploadUnknown) {
		t.Fatalf("the second commit: %v, want ErrUploadUnknown", err)
	}
	if recorded != 0 {
		t.Fatalf("the second commit recorded the blob")
	}
	if ok, err := y.Has(dg); err != nil || ok {
		t.Fatalf("the freed blob after the second commit: %v %v", ok, err)
	}
	// An upload of the same bytes afterwards is stored and read back.
	id = youngUpload(t, y, repo, body)
	if _, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	readsBack(t, x, dg, body)
}

// A cancel through one process while a commit of the upload's bytes
// through another is promoting them: the cancel waits for the commit's
// lock, so that it does not take away the bytes the commit is about to
// name in the blob's index.
func TestS3CancelWaitsForACommit(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var locks sharedLocks
	g := s3test.HoldWrites(t, srv.Endpoint, "/blobs/sha256/", true)
	gated := srv
	gated.Endpoint = g.URL
	x, y := New(s3Driver(t, srv, bucket)), New(s3Driver(t, gated, bucket))
	wants := make(chan struct{}, 1)
	x.SetSharedLock(func(d digest.Digest) (func(), error) {
		wants <- struct{}{}
		return locks.lock(d)
	})
	y.SetSharedLock(locks.lock)
	const repo = "team/app"
	body := bytes.Repeat([]byte("cancelled while committed "), 1000)
	dg := digest.FromBytes(body)
	id := youngUpload(t, x, repo, body)

	committed := make(chan error, 1)
	go func() {
		_, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string) error { return nil })
		committed <- err
	}()
	<-g.Held // y holds the lock and writes the index
	cancelled := make(chan error, 1)
	go func() { cancelled <- x.Cancel(repo, id) }()
	var cerr error
	select {
	case <-wants: // x asks for the lock y holds
		g.Release()
		cerr = <-cancelled
	case cerr = <-cancelled:
		t.Errorf("the cancel ended (%v) while the commit held the digest's lock", cerr)
		g.Release()
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if cerr != nil && !errors.Is(cerr, ErrUploadUnknown) {
		t.Errorf("the cancel: %v", cerr)
	}
	readsBack(t, x, dg, body)
}
