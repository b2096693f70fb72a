package kv

import "testing"

// A version 12 store opens as version 13 with everything it answered
// unchanged and no upload state; states are then written and read.
func TestMigrateUploadStatesV13(t *testing.T) {
	db, _ := migratedFrom(t, 12)
	n := 0
	err := db.View(func(tx *Tx) error {
		return tx.UploadStates(func(string, []byte) (bool, error) { n++; return true, nil })
	})
	if err != nil || n != 0 {
		t.Fatalf("a migrated store lists %d upload states, %v", n, err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.CreateUploadState("u-1", []byte("s")) }); err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		st, err := tx.UploadState("u-1")
		if err == nil && string(st) != "s" {
			t.Errorf("state %q, want %q", st, "s")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
