package blobs

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// sharedLocks is a lock per key shared by stores, as the database's
// advisory locks are by kvreg's processes. Keys come sorted (lockKeys).
// A lock found held is told on waits, if set, before it is waited for.
type sharedLocks struct {
	mu    sync.Mutex
	m     map[string]*sync.Mutex
	waits chan string
}

func (l *sharedLocks) lock(keys ...string) (func(), error) {
	var held []*sync.Mutex
	for _, k := range keys {
		l.mu.Lock()
		if l.m == nil {
			l.m = map[string]*sync.Mutex{}
		}
		m := l.m[k]
		if m == nil {
			m = &sync.Mutex{}
			l.m[k] = m
		}
		l.mu.Unlock()
		if !m.TryLock() {
			if l.waits != nil {
				l.waits <- k
			}
			m.Lock()
		}
		held = append(held, m)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}, nil
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
	y.SetSharedLock(func(keys ...string) (func(), error) {
		gate.Do(func() {
			close(atLock)
			<-release
		})
		return locks.lock(keys...)
	})
	const repo = "team/app"
	body := bytes.Repeat([]byte("committed twice "), 1000)
	dg := digest.FromBytes(body)
	id := youngUpload(t, x, repo, body)

	recorded := 0
	done := make(chan error, 1)
	go func() {
		_, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string, string) error { recorded++; return nil })
		done <- err
	}()
	<-atLock
	if _, err := x.Commit(repo, id, dg, int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
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
	if _, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	readsBack(t, x, dg, body)
}

// A cancel through one process while a commit of the upload through
// another is promoting its bytes: the cancel waits for the commit's lock
// of the upload, so that it does not take away the bytes the commit is
// about to name in the blob's index, then finds the upload ended. So
// too when a chunk was appended through a third process since the
// cancelling one last saw the upload: the commit is of other bytes, and of
// another digest, than the cancel knows of (the upload's lock, not the
// digest's, keeps them apart).
func TestS3CancelWaitsForACommit(t *testing.T) {
	for _, appended := range []bool{false, true} {
		t.Run(map[bool]string{false: "the bytes it saw", true: "a chunk appended since"}[appended], func(t *testing.T) {
			srv, bucket := s3test.Bucket(t)
			locks := sharedLocks{waits: make(chan string, 1)}
			g := s3test.HoldWrites(t, srv.Endpoint, "/blobs/sha256/", true)
			gated := srv
			gated.Endpoint = g.URL
			x, y, z := New(s3Driver(t, srv, bucket)), New(s3Driver(t, gated, bucket)), New(s3Driver(t, srv, bucket))
			for _, s := range []*Store{x, y, z} {
				s.SetSharedLock(locks.lock)
			}
			const repo = "team/app"
			body := bytes.Repeat([]byte("cancelled while committed "), 1000)
			id := youngUpload(t, x, repo, body)
			if n, err := x.UploadSize(repo, id); err != nil || n != int64(len(body)) {
				t.Fatalf("x's view of the upload: %d, %v", n, err)
			}
			if appended {
				more := bytes.Repeat([]byte("a chunk appended elsewhere "), 1000)
				if _, err := z.AppendExact(repo, id, int64(len(body)), int64(len(more)), bytes.NewReader(more), 0); err != nil {
					t.Fatal(err)
				}
				body = append(body, more...)
			}
			dg := digest.FromBytes(body)

			committed := make(chan error, 1)
			go func() {
				_, err := y.Commit(repo, id, dg, int64(len(body)), func(int64, string, string) error { return nil })
				committed <- err
			}()
			<-g.Held // y holds its locks and writes the index
			cancelled := make(chan error, 1)
			go func() { cancelled <- x.Cancel(repo, id) }()
			cerr := waitsForTheCommit(t, g, locks.waits, cancelled, id)
			if err := <-committed; err != nil {
				t.Fatal(err)
			}
			if !errors.Is(cerr, ErrUploadUnknown) {
				t.Errorf("the cancel after the commit: %v, want ErrUploadUnknown", cerr)
			}
			readsBack(t, x, dg, body)
		})
	}
}

// waitsForTheCommit lets the commit held at g go once the cancel (whose
// outcome comes on cancelled) waits for the upload's lock, and returns
// the cancel's outcome; a cancel that ends first, while the commit holds
// its locks, fails the test.
func waitsForTheCommit(t *testing.T, g *s3test.Gate, waits <-chan string, cancelled <-chan error, id string) error {
	t.Helper()
	select {
	case k := <-waits:
		if k != uploadLockKey(id) {
			t.Errorf("the cancel waited for %q, want the upload's lock", k)
		}
		g.Release()
		return <-cancelled
	case err := <-cancelled:
		t.Errorf("the cancel ended (%v) while the commit held the upload's lock", err)
		g.Release()
		return err
	}
}
