package kv

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// A version 3 store (no pins) opens as the current version with everything it
// answered unchanged; a read-only open refuses it until then. Pins are
// then written, replaced, found expired by the expiry index, and deleted
// with their index entries.
func TestMigratePinsV4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvreg.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillV3(t, db)
	want := snapshotV3(t, db)
	if err := db.Update(func(tx *Tx) error { return tx.b.Put(tableMeta, keySchemaVersion, []byte{0, 0, 0, 3}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of version 3: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v", v, err)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
	}

	err = db.Update(func(tx *Tx) error {
		for _, p := range []Pin{
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:a", Until: 10},
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:a", Until: 30}, // replaces the first
			{Kind: LeaseManifest, Repo: "team/a", Digest: "sha256:a", Until: 20},
			{Kind: LeaseLink, Repo: "team/b", Digest: "sha256:b", Until: 40},
		} {
			if err := tx.PutPin(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expired := func(now int64) string {
		var got []Pin
		if err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.ExpiredPins(now, 10)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	if got := expired(15); got != "[]" {
		t.Fatalf("expired at 15: %s (the replaced pin's entry is left)", got)
	}
	if got, want := expired(30), "[{109 team/a sha256:a  20 false} {108 team/a sha256:a  30 false}]"; got != want {
		t.Fatalf("expired at 30: %s, want %s", got, want)
	}
	err = db.Update(func(tx *Tx) error {
		p, ok, err := tx.Pin(LeaseLink, "team/a", "sha256:a", "")
		if err != nil || !ok || p.Until != 30 {
			return fmt.Errorf("pin %+v %v %v", p, ok, err)
		}
		if err := tx.DeletePin(LeaseLink, "team/a", "sha256:a", ""); err != nil {
			return err
		}
		if err := tx.DeletePin(LeaseLink, "team/a", "sha256:none", ""); err != nil {
			return err
		}
		_, ok, err = tx.Pin(LeaseLink, "team/a", "sha256:a", "")
		if err != nil || ok {
			return fmt.Errorf("deleted pin still there: %v %v", ok, err)
		}
		var all []Pin
		if err := tx.ForEachPin(func(p Pin) error { all = append(all, p); return nil }); err != nil {
			return err
		}
		if got, want := fmt.Sprint(all), "[{108 team/b sha256:b  40 false} {109 team/a sha256:a  20 false}]"; got != want {
			return fmt.Errorf("pins %s, want %s", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := expired(100), "[{109 team/a sha256:a  20 false} {108 team/b sha256:b  40 false}]"; got != want {
		t.Fatalf("expired at 100 after a delete: %s, want %s", got, want)
	}
}
