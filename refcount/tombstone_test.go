package refcount_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A blob's tombstone covers a crash between the transaction that deleted its
// record and the removal of its file. The removal of an earlier deletion of
// the same digest must not make a later tombstone be forgotten. Here: a
// deletion commits; the same bytes are uploaded again before its file
// removal runs; a second deletion's transaction is open when that removal
// runs, finds the record still there, keeps the file and lists the digest as
// "cleared"; the second deletion commits its tombstone; the next write
// forgets "cleared" tombstones, the second one with them; the process dies
// before the second deletion removed the file. On restart nothing says the
// file is to go: an orphan file. (The removal checks the record in a write
// transaction: on bbolt, whose writers go one at a time, it runs once the
// second deletion has committed, and that interleaving cannot happen.)
func TestLaterTombstoneOutlivesAnEarlierRemoval(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	const repo = "tomb/x"
	data := []byte("the same bytes, deleted twice")
	d := digest.FromBytes(data)
	put := func() {
		t.Helper()
		if _, err := f.PutBlob(repo, d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
			t.Fatal(err)
		}
	}
	deleteLinkTx := func(tx *kv.Tx, c *refcount.Change) error {
		l, ok, err := tx.Link(repo, string(d))
		if err != nil || !ok {
			return fmt.Errorf("link of %s: %v, %v", d, ok, err)
		}
		return f.DeleteLinkTx(tx, c, repo, string(d), l)
	}
	put()
	c1, err := f.UpdateTx(deleteLinkTx) // first deletion; its files not yet removed
	if err != nil {
		t.Fatal(err)
	}
	put() // uploaded again: the file is still there, the record comes back
	// The removal checks the record in a write transaction of its own:
	// bbolt's writers go one at a time, so there it runs once the second
	// deletion has committed; PostgreSQL's run side by side.
	serial := f.Backend.DB == "bolt"
	_, err = f.UpdateTx(func(tx *kv.Tx, c *refcount.Change) error {
		if !serial {
			// The first deletion's file removal runs while this one is open.
			done := make(chan error, 1)
			go func() { done <- f.Finish(c1) }()
			if err := <-done; err != nil {
				return err
			}
		}
		return deleteLinkTx(tx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if serial {
		if err := f.Finish(c1); err != nil {
			t.Fatal(err)
		}
	}
	var tomb bool
	tombstone := func() bool {
		t.Helper()
		var tomb bool
		err := f.DB().View(func(tx *kv.Tx) error {
			var err error
			_, tomb, err = tx.Tombstone(string(d))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tomb
	}
	tomb = tombstone()
	if !tomb {
		t.Fatal("the second deletion left no tombstone")
	}
	f.blob("tomb/other", 10) // any other write
	tomb = tombstone()
	t.Logf("after the next write: tombstone %v, file %v", tomb, f.exists(d))
	f.Reopen() // kill -9 before the second deletion removed the file
	if p := f.Problems(); len(p) != 0 {
		t.Fatalf("after restart: %v", kinds(p))
	}
	if f.exists(d) {
		t.Fatal("the file of a deleted blob survived the restart")
	}
}
