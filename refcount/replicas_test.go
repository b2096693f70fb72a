package refcount_test

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// replicas opens two registries over one PostgreSQL database and one blob
// store, as two kvreg processes sharing them: the first of the chosen
// backends on PostgreSQL (make test-postgres; make test-s3 runs them with
// an S3 bucket).
func replicas(t *testing.T) (a, b *fixture) {
	t.Helper()
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range bs {
		if be.DB == "postgres" {
			a = newFixture(t, regtest.Options{Backend: be, Shared: true})
			b = &fixture{Registry: a.Replica(), t: t, rnd: rand.New(rand.NewSource(2))}
			return a, b
		}
	}
	t.Skipf("replicas share a PostgreSQL database: %s=postgres", regtest.EnvBackends)
	return nil, nil
}

// until polls cond, failing the test if failed reports true first (or
// after ten seconds): the wait for another registry to reach a state.
func until(t *testing.T, what string, cond func() bool, failed <-chan error) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		select {
		case err := <-failed:
			t.Fatalf("before %s, the operation ended: %v", what, err)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func lockWaits(f *fixture) uint64 {
	s, _ := f.StoreStats()
	return s.LockWaits
}

// pause makes f's commits of d stop between promoting and recording until
// release is closed; paused is closed when one has stopped there.
func pause(f *fixture, d digest.Digest) (paused, release chan struct{}) {
	paused, release = make(chan struct{}), make(chan struct{})
	f.SetRecordHook(func(got digest.Digest) {
		if got == d {
			close(paused)
			<-release
		}
	})
	return paused, release
}

// A commit on one replica finds the blob's bytes there and is held before
// it records the blob; the other replica deletes the blob's last link and
// comes to remove the bytes: it waits for the commit, then finds the record
// back and keeps them.
func TestReplicasCommitAndRemovalOfOneDigest(t *testing.T) {
	a, b := replicas(t)
	data := []byte("bytes committed on one replica while the other removes them")
	d := digest.FromBytes(data)
	if _, err := a.PutBlob("one", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		t.Fatal(err)
	}
	paused, release := pause(a, d)
	committed := make(chan error, 1)
	go func() {
		_, err := a.PutBlob("two", d, bytes.NewReader(data), int64(len(data)), 0)
		committed <- err
	}()
	<-paused
	removed := make(chan error, 1)
	go func() {
		_, err := b.DeleteBlob("one", d)
		removed <- err
	}()
	until(t, "the removal to wait for the commit's lock", func() bool { return lockWaits(b) > 0 }, removed)
	select {
	case err := <-removed:
		t.Fatalf("the removal ended while the commit held the digest: %v", err)
	default:
	}
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fixture{a, b} {
		if n, err := f.StatBlob("two", d, false, ""); err != nil || n != int64(len(data)) {
			t.Fatalf("blob in two: %d bytes, %v", n, err)
		}
		if n, _, err := f.Blobs().StoredSize(d); err != nil || n != int64(len(data)) {
			t.Fatalf("stored bytes: %d, %v", n, err)
		}
	}
	a.MustClean()
	b.MustClean()
}

// A replica that dies between deleting a blob's record and removing its
// bytes leaves a tombstone; another replica's FinishPending removes the
// bytes once it has seen the tombstone for the age it is given.
func TestReplicaFinishesADeadReplicasTombstone(t *testing.T) {
	a, b := replicas(t)
	data := []byte("bytes whose record a dead replica deleted")
	d := digest.FromBytes(data)
	if _, err := a.PutBlob("x", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateTx(func(tx *kv.Tx, c *refcount.Change) error {
		l, ok, err := tx.Link("x", string(d))
		if err != nil || !ok {
			return errors.Join(err, errors.New("no link"))
		}
		return a.DeleteLinkTx(tx, c, "x", string(d), l)
	}); err != nil {
		t.Fatal(err)
	}
	a.Close() // dies: the change is never finished

	const age = 10 * time.Second
	if tombs, _, err := b.FinishPending(age); err != nil || tombs != 0 {
		t.Fatalf("first sighting: %d tombstones finished, %v", tombs, err)
	}
	if !b.exists(d) {
		t.Fatal("a tombstone was finished before it was seen for its age")
	}
	b.Clock.Advance(age)
	if tombs, _, err := b.FinishPending(age); err != nil || tombs != 1 {
		t.Fatalf("after %s: %d tombstones finished, %v", age, tombs, err)
	}
	if _, _, err := b.Blobs().StoredSize(d); !errors.Is(err, blobs.ErrNotFound) {
		t.Fatalf("bytes of the tombstoned blob: %v", err)
	}
	if err := b.DB().View(func(tx *kv.Tx) error {
		if _, ok, err := tx.Tombstone(string(d)); err != nil || ok {
			return errors.Join(err, errors.New("tombstone still there"))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.MustClean()
}

// A replica that dies between promoting an upload and recording the blob
// leaves the upload promoting; another replica's FinishPending removes the
// blob it created and the upload.
func TestReplicaFinishesADeadReplicasCommit(t *testing.T) {
	a, b := replicas(t)
	d := a.interrupt("y", []byte("promoted by a replica that died before recording"))
	a.Close()
	if _, ups, err := b.FinishPending(time.Second); err != nil || ups != 1 {
		t.Fatalf("interrupted commits finished: %d, %v", ups, err)
	}
	if b.exists(d) {
		t.Fatal("the blob of an unrecorded commit is still stored")
	}
	if ids, err := b.Blobs().Uploads(); err != nil || len(ids) != 0 {
		t.Fatalf("uploads left: %v, %v", ids, err)
	}
	b.MustClean()
}

// A commit in progress on one replica, held between promoting and
// recording, is not a dead one's to another replica's FinishPending: it
// waits for the digest's lock, then finds the commit done.
func TestReplicaLeavesALiveCommit(t *testing.T) {
	a, b := replicas(t)
	data := []byte("a new blob whose commit is in progress")
	d := digest.FromBytes(data)
	paused, release := pause(a, d)
	committed := make(chan error, 1)
	go func() {
		_, err := a.PutBlob("z", d, bytes.NewReader(data), int64(len(data)), 0)
		committed <- err
	}()
	<-paused
	finished := make(chan error, 1)
	var ups int
	go func() {
		var err error
		_, ups, err = b.FinishPending(0)
		finished <- err
	}()
	until(t, "the finisher to wait for the commit's lock", func() bool { return lockWaits(b) > 0 }, finished)
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if err := <-finished; err != nil || ups != 0 {
		t.Fatalf("finished %d live commits, %v", ups, err)
	}
	if n, err := b.StatBlob("z", d, false, ""); err != nil || n != int64(len(data)) {
		t.Fatalf("blob in z: %d bytes, %v", n, err)
	}
	a.MustClean()
	b.MustClean()
}

// A replica's startup removes only the strays older than
// DefaultOrphanGrace: younger ones may be another live replica's
// operation in flight, written before this one opened.
func TestReplicaStartupKeepsYoungStrays(t *testing.T) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if bs[0].DB != "postgres" {
		t.Skipf("replicas share a PostgreSQL database: %s=postgres", regtest.EnvBackends)
	}
	// Strays made as files of the directory store, as in
	// TestStraysGraceAndRecover.
	a := newFixture(t, regtest.Options{Backend: bs[0], Blobs: regtest.BlobsLocal, Shared: true})
	uploads := filepath.Dir(filepath.Dir(localFiles(t, a.Registry.Registry).UploadFile("x")))
	stray := func(name string, at time.Time) string {
		t.Helper()
		dir := filepath.Join(uploads, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "data")
		if err := os.WriteFile(file, []byte("half an upload"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{file, dir} {
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	now := a.Clock.Now()
	young := stray("a0000000000000000000000000000000", now.Add(-time.Minute))
	old := stray("b0000000000000000000000000000000", now.Add(-refcount.DefaultOrphanGrace-time.Second))
	a.Replica()
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a replica's startup removed a stray a minute old: %v", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stray older than the grace survived a replica's startup: %v", err)
	}
	os.RemoveAll(young)
}
