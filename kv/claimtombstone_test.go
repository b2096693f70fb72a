package kv

import (
	"testing"
)

// A transaction that found a blob unrecorded and is about to record it
// cannot commit once another has claimed the blob's tombstone after
// finding it unrecorded too (ClaimTombstone): its first attempt fails and
// its closure runs again, seeing the claim. A claim where there was no
// tombstone leaves none, and fences all the same. A registry whose record
// transaction's answer was lost never runs it again, so that its COMMIT,
// arriving late, stores nothing over bytes the claimer removed.
func TestClaimTombstoneFencesAPendingRecord(t *testing.T) {
	if !onPostgres() {
		t.Skip("bbolt's writers go one at a time: no transaction is pending while another claims")
	}
	db, err := Open(target(t), Options{Replica: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	read, claimed := make(chan struct{}), make(chan struct{})
	runs := 0
	recorded := make(chan error, 1)
	go func() {
		recorded <- db.Update(func(tx *Tx) error {
			runs++
			if _, ok, err := tx.Blob(d); err != nil || ok {
				return err
			}
			if runs == 1 {
				close(read)
				<-claimed
			}
			return tx.CreateBlob(d, Blob{Size: 1})
		})
	}()
	<-read
	err = db.Update(func(tx *Tx) error {
		if _, ok, err := tx.Blob(d); err != nil || ok {
			t.Errorf("the claimer found the blob recorded (%v) or failed: %v", ok, err)
			return err
		}
		_, found, err := tx.ClaimTombstone(d)
		if err == nil && found {
			t.Errorf("the claim found a tombstone where there was none")
		}
		return err
	})
	if err != nil {
		close(claimed)
		t.Fatalf("claim: %v", err)
	}
	// A claim where there was no tombstone leaves none: the fence holds
	// without it.
	var left bool
	err = db.View(func(tx *Tx) error {
		var err error
		_, left, err = tx.Tombstone(d)
		return err
	})
	close(claimed)
	if err != nil || left {
		t.Fatalf("tombstone after a claim where there was none: %v, %v", left, err)
	}
	if err := <-recorded; err != nil {
		t.Fatalf("record: %v", err)
	}
	if runs < 2 {
		t.Fatalf("the record's first attempt, which read before the claim, committed (%d runs)", runs)
	}
	t.Logf("the record ran %d times", runs)
}
