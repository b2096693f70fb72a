package refcount_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/driver/drivertest"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// s3WithStates is a blob store over a new bucket whose driver keeps its
// upload states in a new database of the backend under test, as a
// registry's does; skipped unless the blob store under test is S3.
func s3WithStates(t *testing.T) (*blobs.Store, *kv.DB, *s3test.Client) {
	t.Helper()
	dbTarget, storeURL, client := s3StatesTargets(t)
	store, db := openWithStates(t, dbTarget, storeURL)
	return store, db, client
}

// s3StatesTargets makes a new database of the backend under test and a
// new bucket, and returns where they are (for openWithStates); skipped
// unless the blob store under test is S3.
func s3StatesTargets(t *testing.T) (dbTarget, storeURL string, client *s3test.Client) {
	t.Helper()
	if bs, err := regtest.BlobStore(); err != nil || bs != regtest.BlobsS3 {
		t.Skipf("the S3 driver's states in the database: %s=%s", regtest.EnvBlobs, regtest.BlobsS3)
	}
	backends, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	dbTarget = filepath.Join(t.TempDir(), "kvreg.db")
	if backends[0].DB == "postgres" {
		dbTarget = pgtest.NewDatabase(t)
	}
	srv, bucket := s3test.Bucket(t)
	storeURL = (&url.URL{Scheme: "s3", Host: bucket, RawQuery: url.Values{
		"endpoint": {srv.Endpoint}, "region": {srv.Region}, "path-style": {"true"},
	}.Encode()}).String()
	return dbTarget, storeURL, srv.Client(bucket)
}

// openWithStates opens the database and the blob store, the driver keeping
// its upload states in that database. On PostgreSQL the database is
// opened as a replica's, so that several may share it.
func openWithStates(t *testing.T, dbTarget, storeURL string) (*blobs.Store, *kv.DB) {
	t.Helper()
	db, err := kv.Open(dbTarget, kv.Options{Replica: kv.IsURL(dbTarget)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := blobs.OpenTarget("", storeURL)
	if err != nil {
		t.Fatal(err)
	}
	if !store.KeepStatesIn(refcount.UploadStates(db)) {
		t.Fatal("the S3 driver does not keep its states in the database")
	}
	return store, db
}

// The S3 driver with its upload states in the database passes the blob
// drivers' conformance suite, on the backend under test.
func TestUploadStatesConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		store, _, _ := s3WithStates(t)
		return store.Driver()
	})
}

// An upload's state is a row of the database and no object of the bucket:
// written at its first bytes, read by the commit, gone with the upload;
// a create over an existing state is refused as driver.ErrExists.
func TestUploadStatesLiveInTheDatabase(t *testing.T) {
	store, db, bucket := s3WithStates(t)
	states := refcount.UploadStates(db)
	tok, err := store.NewUpload("team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append("team/app", tok, 0, strings.NewReader("hello"), 0); err != nil {
		t.Fatal(err)
	}
	ids, err := store.Driver().Uploads()
	if err != nil || len(ids) != 1 {
		t.Fatalf("uploads %v, %v; want one", ids, err)
	}
	id := ids[0]
	rec, err := states.GetState(id)
	if err != nil || len(rec) == 0 {
		t.Fatalf("state of upload %s after its first bytes: %q, %v", id, rec, err)
	}
	if _, err := bucket.Head("uploads/" + id + "/state"); err == nil {
		t.Fatalf("upload %s has a state object in the bucket too", id)
	}
	if err := states.PutState(id, rec, nil); !errors.Is(err, driver.ErrExists) {
		t.Fatalf("create over a state: %v, want driver.ErrExists", err)
	}
	if err := states.PutState(id, []byte(`{"object":"elsewhere"}`), []byte(`{"object":"not it"}`)); !errors.Is(err, driver.ErrStale) {
		t.Fatalf("write over a state the caller did not see: %v, want driver.ErrStale", err)
	}
	if again, err := states.GetState(id); err != nil || string(again) != string(rec) {
		t.Fatalf("state after a refused write: %q, %v; want %q", again, err, rec)
	}
	var objects []string
	err = store.Driver().(driver.StrayLister).Strays(func(s driver.Stray) error {
		objects = append(objects, s.Name)
		return nil
	})
	if err != nil || len(objects) != 0 {
		t.Fatalf("strays of an upload whose state is in the database: %v, %v", objects, err)
	}
	if err := store.Driver().RemoveUpload(id); err != nil {
		t.Fatal(err)
	}
	if _, err := states.GetState(id); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("state after the upload's removal: %v, want driver.ErrNotFound", err)
	}
	if err := states.PutState(id, rec, rec); !errors.Is(err, driver.ErrStale) {
		t.Fatalf("write over the state of an upload that ended: %v, want driver.ErrStale", err)
	}
	if _, err := states.GetState(id); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("state of an ended upload after a refused write: %v, want driver.ErrNotFound", err)
	}
}

// A commit ends its upload's state in the transaction that records the
// blob: on PostgreSQL, a one-chunk upload's commit is one write
// transaction, and afterwards no state and no stray is left.
func TestUploadStatesEndWithTheCommit(t *testing.T) {
	if bs, err := regtest.BlobStore(); err != nil || bs != regtest.BlobsS3 {
		t.Skipf("the S3 driver's states in the database: %s=%s", regtest.EnvBlobs, regtest.BlobsS3)
	}
	r := regtest.Open(t, regtest.Options{})
	body := "one chunk"
	d := digest.FromString(body)
	id, err := r.StartUpload("team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Blobs().Append("team/app", id, 0, strings.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	before, counted := r.StoreStats()
	if _, err := r.CommitUpload("team/app", id, d, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if after, _ := r.StoreStats(); counted && after.Updates-before.Updates != 1 {
		t.Errorf("the commit took %d write transactions, want 1", after.Updates-before.Updates)
	}
	n := 0
	if err := refcount.UploadStates(r.DB()).EachState(func(string, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("%d upload states after the commit, %v", n, err)
	}
	strays, err := r.Blobs().Strays(time.Now().Add(time.Hour))
	if err != nil || len(strays) != 0 {
		t.Errorf("strays after the commit: %v, %v", strays, err)
	}
}

// A replica that has not seen an upload reads its state from the
// database; while the database is down that read fails as storage that
// does not answer (the registry's 503), never as an unknown upload (404,
// which tells a client to start over), and once the database is back
// the upload goes on and commits on that replica.
func TestUploadStatesUnreachable(t *testing.T) {
	backends, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if backends[0].DB != "postgres" {
		t.Skipf("a database outage needs PostgreSQL: %s=postgres", regtest.EnvBackends)
	}
	dbTarget, storeURL, _ := s3StatesTargets(t)
	a, _ := openWithStates(t, dbTarget, storeURL)
	b, bdb := openWithStates(t, dbTarget, storeURL)
	const repo = "team/app"
	ref, err := a.NewUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(repo, ref, 0, strings.NewReader("hello "), 0); err != nil {
		t.Fatal(err)
	}
	id := blobs.UploadRef(ref, 1)

	pgtest.Stop(t)
	_, sizeErr := b.UploadSize(repo, id)
	_, appendErr := b.Append(repo, id, 6, strings.NewReader("world"), 0)
	pgtest.Start(t)
	for what, err := range map[string]error{"upload status": sizeErr, "append": appendErr} {
		if !errors.Is(err, driver.ErrUnavailable) || errors.Is(err, blobs.ErrUploadUnknown) {
			t.Errorf("%s on another replica while the database is down: %v; want driver.ErrUnavailable", what, err)
		}
	}

	var size int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		size, err = b.UploadSize(repo, id)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || size != 6 {
		t.Fatalf("upload status after the database came back: %d, %v; want 6", size, err)
	}
	if _, err := b.Append(repo, id, 6, strings.NewReader("world"), 0); err != nil {
		t.Fatal(err)
	}
	want := digest.FromString("hello world")
	// The record, as a registry's, removes the upload's state.
	n, err := b.Commit(repo, id, want, -1, func(_ int64, _, st string) error {
		if st != id {
			return fmt.Errorf("the commit's state record is %q, want %q", st, id)
		}
		return refcount.UploadStates(bdb).DeleteState(st)
	})
	if err != nil || n != 11 {
		t.Fatalf("commit after the outage: %d, %v", n, err)
	}
	rc, err := b.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "hello world" {
		t.Fatalf("blob after the commit: %q, %v", got, err)
	}
	left := 0
	if err := refcount.UploadStates(bdb).EachState(func(string, []byte) error { left++; return nil }); err != nil || left != 0 {
		t.Errorf("%d upload states after the commit, %v", left, err)
	}
}

// twoStoresWithStates is two blob stores, as two replicas' are, over one
// new bucket, keeping their upload states in one new database of the
// backend under test.
func twoStoresWithStates(t *testing.T) (a, b *blobs.Store, db *kv.DB) {
	t.Helper()
	dbTarget, storeURL, _ := s3StatesTargets(t)
	a, db = openWithStates(t, dbTarget, storeURL)
	b, err := blobs.OpenTarget("", storeURL)
	if err != nil {
		t.Fatal(err)
	}
	if !b.KeepStatesIn(refcount.UploadStates(db)) {
		t.Fatal("the S3 driver does not keep its states in the database")
	}
	return a, b, db
}

// gatedReader blocks its first Read until open is closed, and closes
// reading when it starts waiting.
type gatedReader struct {
	r             io.Reader
	reading, open chan struct{}
	once          sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.reading); <-g.open })
	return g.r.Read(p)
}

// A chunk that one replica reads while another commits the upload does
// not bring the upload back: its write of the upload's state finds the
// state gone with the commit and fails, so that nothing can resume,
// cancel or seal the upload again over the bytes of the blob it became.
// The blob reads as committed afterwards, and the upload is unknown on
// both replicas. With a chunk that fills a part, the late chunk would
// also have started a multipart upload over the blob's data object.
func TestUploadStatesChunkRacingACommit(t *testing.T) {
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("fills a part %v", big), func(t *testing.T) {
			a, b, db := twoStoresWithStates(t)
			const repo = "team/app"
			first := []byte("the first chunk")
			ref, err := a.NewUpload(repo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Append(repo, ref, 0, bytes.NewReader(first), 0); err != nil {
				t.Fatal(err)
			}
			id := blobs.UploadRef(ref, 1)
			late := []byte("a late chunk")
			if big {
				late = bytes.Repeat([]byte("x"), int(b.Driver().(interface{ PartSize() int64 }).PartSize())+1)
			}
			g := &gatedReader{r: bytes.NewReader(late), reading: make(chan struct{}), open: make(chan struct{})}
			appended := make(chan error, 1)
			go func() {
				_, err := b.Append(repo, id, int64(len(first)), g, 0)
				appended <- err
			}()
			select {
			case <-g.reading:
			case err := <-appended:
				t.Fatalf("the chunk on replica B ended before it read its body: %v", err)
			}
			want := digest.FromBytes(first)
			states := refcount.UploadStates(db)
			if _, err := a.Commit(repo, id, want, -1, func(_ int64, _, st string) error { return states.DeleteState(st) }); err != nil {
				t.Fatal(err)
			}
			close(g.open)
			err = <-appended
			if !errors.Is(err, blobs.ErrUploadUnknown) {
				t.Errorf("chunk on replica B that read the upload before the commit on A: %v; want blobs.ErrUploadUnknown", err)
			}
			if _, err := states.GetState(id); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("state of the committed upload after the late chunk: %v; want driver.ErrNotFound", err)
			}
			both := digest.FromBytes(append(append([]byte{}, first...), late...))
			if _, err := b.Commit(repo, id, both, -1, func(_ int64, _, st string) error { return states.DeleteState(st) }); !errors.Is(err, blobs.ErrUploadUnknown) {
				t.Errorf("commit of the upload again on replica B: %v; want blobs.ErrUploadUnknown", err)
			}
			if err := b.Cancel(repo, id); err != nil && !errors.Is(err, blobs.ErrUploadUnknown) {
				t.Errorf("cancel of the upload on replica B: %v", err)
			}
			// What the late chunk wrote went with its refused write.
			if strays, err := b.Strays(time.Now().Add(time.Hour)); err != nil || len(strays) != 0 {
				t.Errorf("strays after the late chunk: %v, %v", strays, err)
			}
			for name, s := range map[string]*blobs.Store{"A": a, "B": b} {
				rc, err := s.Open(want)
				if err != nil {
					t.Fatalf("blob %s through replica %s: %v", want, name, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, first) {
					t.Fatalf("blob %s through replica %s: %q, %v; want %q", want, name, got, err, first)
				}
			}
		})
	}
}
