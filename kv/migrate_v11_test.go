package kv

import (
	"strings"
	"testing"
)

// A version 10 store opens as version 11 with everything it answered
// unchanged: its blob records (size | created) read with no location. A
// record made with one keeps it, beside them.
func TestMigrateBlobLocationV11(t *testing.T) {
	db, _ := migratedFrom(t, 10)
	var old []string
	err := db.Update(func(tx *Tx) error {
		err := tx.ForEachBlob(func(d string, b Blob) error {
			if b.Location != "" {
				t.Errorf("%s: location %q in a migrated store", d, b.Location)
			}
			old = append(old, d)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.CreateBlob("sha256:located", Blob{Size: 7, Created: 99, Location: "data/u-1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(old) == 0 {
		t.Fatal("no blob records in the migrated store")
	}
	err = db.View(func(tx *Tx) error {
		b, ok, err := tx.Blob("sha256:located")
		if err != nil || !ok || b != (Blob{Size: 7, Created: 99, Location: "data/u-1"}) {
			t.Errorf("new record %+v %v %v", b, ok, err)
		}
		b, ok, err = tx.Blob(old[0])
		if err != nil || !ok || b.Location != "" || b.Size == 0 {
			t.Errorf("old record %s: %+v %v %v", old[0], b, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A location longer than a record keeps (a driver's mistake) is left out:
// the record is made, with its size, and its bytes are found through the
// blob store as for a record without one.
func TestCreateBlobDropsAnOverlongLocation(t *testing.T) {
	db := openTemp(t)
	long := Blob{Size: 3, Created: 4, Location: strings.Repeat("x", maxLocation+1)}
	if err := db.Update(func(tx *Tx) error { return tx.CreateBlob("sha256:long", long) }); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *Tx) error {
		b, ok, err := tx.Blob("sha256:long")
		if err != nil || !ok || b != (Blob{Size: 3, Created: 4}) {
			t.Errorf("record %+v %v %v, want size 3, created 4, no location", b, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
