package kv

import "testing"

// A version 11 store opens as version 12 with everything it answered
// unchanged: a tombstone written by version 11 (its generation alone)
// reads with no location, and one made now keeps its record's.
func TestMigrateTombstoneLocationV12(t *testing.T) {
	db, _ := migratedFrom(t, 11)
	old := make([]byte, 8)
	putU64(old, 42)
	err := db.Update(func(tx *Tx) error {
		if err := tx.b.Put(tableTombstones, []byte("sha256:old"), old); err != nil {
			return err
		}
		if err := tx.CreateBlob("sha256:new", Blob{Size: 7, Created: 99, Location: "data/u-1"}); err != nil {
			return err
		}
		return tx.DeleteBlob("sha256:new")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		tb, ok, err := tx.Tombstone("sha256:old")
		if err != nil || !ok || tb != (Tombstone{Gen: 42}) {
			t.Errorf("version 11 tombstone %+v %v %v", tb, ok, err)
		}
		tb, ok, err = tx.Tombstone("sha256:new")
		if err != nil || !ok || tb.Location != "data/u-1" || tb.Gen == 0 {
			t.Errorf("new tombstone %+v %v %v", tb, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
