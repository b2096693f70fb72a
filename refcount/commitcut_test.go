package refcount_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A replica whose commit of an upload reaches PostgreSQL, and whose
// connection is cut before the answer comes back, cannot tell whether the
// blob was recorded: the PUT fails (503), and the blob's bytes stay. Here
// the record was stored, so the blob pulls whole, before and after the
// sweep of interrupted commits, which removes what is left of the upload;
// fsck finds the store clean.
func TestReplicaCommitAnswerLost(t *testing.T) {
	backends, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if backends[0].DB != "postgres" {
		t.Skipf("a COMMIT's answer cut on its way needs PostgreSQL: %s=postgres", regtest.EnvBackends)
	}
	cut, through := pgtest.NewCommitCut(t, pgtest.NewDatabase(t))
	r := regtest.Open(t, regtest.Options{DB: through, Shared: true})
	const repo = "team/app"
	body := "bytes of a blob whose record's answer was lost"
	d := digest.FromString(body)
	id, err := r.StartUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(repo, id, 0, strings.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	id = blobs.UploadRef(id, 1)
	cut.Arm()
	_, err = r.CommitUpload(repo, id, d, int64(len(body)))
	if cut.Cuts() != 1 {
		t.Fatalf("the proxy cut %d answers to a COMMIT, want 1 (the commit's)", cut.Cuts())
	}
	if !errors.Is(err, blobs.ErrRecordUnknown) || !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("commit whose answer was lost: %v; want blobs.ErrRecordUnknown and kv.ErrUnavailable", err)
	}
	pull := func(when string) {
		t.Helper()
		rc, size, err := r.OpenBlob(repo, d)
		if err != nil {
			t.Fatalf("%s: blob %s: %v", when, d, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body || size != int64(len(body)) {
			t.Fatalf("%s: blob %s reads %q (size %d), %v", when, d, got, size, err)
		}
	}
	pull("after the commit")
	if err := r.Recover(); err != nil {
		t.Fatal(err)
	}
	pull("after the sweep of interrupted commits")
	if n, err := r.UploadsInProgress(); err != nil || n != 0 {
		t.Fatalf("uploads in progress after the sweep: %d, %v", n, err)
	}
	r.MustClean()
}

// A commit whose record fails plainly (here: the database stops under it)
// does not undo the blob it promoted while it cannot make sure that no
// other record of the blob has landed or can still land (an earlier
// attempt's, whose COMMIT was on its way): here one landed, for another
// repository, just before the database stopped. Its bytes stay, and the
// blob pulls through that repository once the database is back.
func TestReplicaCommitFailureKeepsARecordedBlob(t *testing.T) {
	backends, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if backends[0].DB != "postgres" {
		t.Skipf("a database stopped under a commit needs PostgreSQL: %s=postgres", regtest.EnvBackends)
	}
	r := regtest.Open(t, regtest.Options{Shared: true})
	const repo, other = "team/app", "team/other"
	body := "bytes recorded by another commit"
	d := digest.FromString(body)
	id, err := r.StartUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(repo, id, 0, strings.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	id = blobs.UploadRef(id, 1)
	r.SetRecordHook(func(digest.Digest) {
		r.SetRecordHook(nil)
		if _, err := r.UpdateTx(func(tx *kv.Tx, c *refcount.Change) error {
			return r.LinkBlobTx(tx, c, other, string(d), int64(len(body)))
		}); err != nil {
			t.Errorf("the other record: %v", err)
		}
		pgtest.Stop(t)
	})
	_, err = r.CommitUpload(repo, id, d, int64(len(body)))
	pgtest.Start(t)
	if !errors.Is(err, blobs.ErrRecordUnknown) || !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("commit under a stopped database: %v; want blobs.ErrRecordUnknown and kv.ErrUnavailable", err)
	}
	var rc io.ReadSeekCloser
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc, _, err = r.OpenBlob(other, d)
		if err == nil || !errors.Is(err, kv.ErrUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("blob %s through %s after the database came back: %v", d, other, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != body {
		t.Fatalf("blob %s through %s: %q, %v", d, other, got, err)
	}
	if err := r.Recover(); err != nil {
		t.Fatal(err)
	}
	if n, err := r.UploadsInProgress(); err != nil || n != 0 {
		t.Fatalf("uploads in progress after the sweep: %d, %v", n, err)
	}
	r.MustClean()
}
