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

// cutRegistry is a replica's registry on a new PostgreSQL database reached
// through a pgtest.CommitCut, with an upload of body in repo in one chunk,
// named as its client names it next; skipped unless the backend under
// test is PostgreSQL.
func cutRegistry(t *testing.T, repo, body string) (r *regtest.Registry, cut *pgtest.CommitCut, id string) {
	t.Helper()
	backends, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if backends[0].DB != "postgres" {
		t.Skipf("answers cut on their way from the database need PostgreSQL: %s=postgres", regtest.EnvBackends)
	}
	cut, through := pgtest.NewCommitCut(t, pgtest.NewDatabase(t))
	r = regtest.Open(t, regtest.Options{DB: through, Shared: true})
	id, err = r.StartUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(repo, id, 0, strings.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	return r, cut, blobs.UploadRef(id, 1)
}

// A replica whose commit of an upload reaches PostgreSQL, and whose
// connection is cut before the answer comes back, cannot tell whether the
// blob was recorded: the PUT fails (503), and the blob's bytes stay. Here
// the record was stored, so the blob pulls whole, before and after the
// sweep of interrupted commits, which removes what is left of the upload;
// fsck finds the store clean.
func TestReplicaCommitAnswerLost(t *testing.T) {
	const repo = "team/app"
	body := "bytes of a blob whose record's answer was lost"
	d := digest.FromString(body)
	r, cut, id := cutRegistry(t, repo, body)
	cut.Arm()
	_, err := r.CommitUpload(repo, id, d, int64(len(body)))
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

// A commit whose record fails plainly (its connection cut before the
// COMMIT, or the database stopped under it) undoes the blob it promoted only once it has made sure that
// no other record of the blob has landed or can still land (an earlier
// attempt's, whose COMMIT was on its way): recorded elsewhere, or not
// settled (the database down), its bytes stay, and the blob pulls
// through the repository that recorded it; settled as unrecorded, the
// blob goes. No upload is left after Recover, and fsck is clean.
func TestReplicaCommitFailureUndoesOnlyAnUnrecordedBlob(t *testing.T) {
	for _, c := range []struct {
		name              string
		recordedElsewhere bool
		stop              bool
	}{
		{"recorded elsewhere", true, false},
		{"unrecorded", false, false},
		{"recorded elsewhere, database down", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			const repo, other = "team/app", "team/other"
			body := "bytes of " + c.name
			d := digest.FromString(body)
			r, cut, id := cutRegistry(t, repo, body)
			r.SetRecordHook(func(digest.Digest) {
				r.SetRecordHook(nil)
				if c.recordedElsewhere {
					if _, err := r.UpdateTx(func(tx *kv.Tx, ch *refcount.Change) error {
						return r.LinkBlobTx(tx, ch, other, string(d), int64(len(body)))
					}); err != nil {
						t.Errorf("the other record: %v", err)
					}
				}
				if c.stop {
					pgtest.Stop(t)
				} else {
					// The record's first answer.
					cut.CutNext(1)
				}
			})
			_, err := r.CommitUpload(repo, id, d, int64(len(body)))
			if c.stop {
				pgtest.Start(t)
			}
			kept := c.recordedElsewhere || c.stop
			if !errors.Is(err, kv.ErrUnavailable) || errors.Is(err, blobs.ErrRecordUnknown) != kept {
				t.Fatalf("commit: %v; want kv.ErrUnavailable, and blobs.ErrRecordUnknown %v", err, kept)
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
			if c.recordedElsewhere {
				if err != nil {
					t.Fatalf("blob %s through %s: %v", d, other, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || string(got) != body {
					t.Fatalf("blob %s through %s: %q, %v", d, other, got, err)
				}
			} else {
				if err == nil {
					rc.Close()
					t.Fatalf("blob %s that nothing recorded is found through %s", d, other)
				}
				if has, err := r.Blobs().Has(d); err != nil || has {
					t.Fatalf("bytes of blob %s that nothing recorded: present %v, %v", d, has, err)
				}
			}
			if err := r.Recover(); err != nil {
				t.Fatal(err)
			}
			if n, err := r.UploadsInProgress(); err != nil || n != 0 {
				t.Fatalf("uploads in progress after the sweep: %d, %v", n, err)
			}
			r.MustClean()
		})
	}
}
