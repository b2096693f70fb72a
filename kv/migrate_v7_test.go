package kv

import (
	"testing"
)

// A version 6 store opens as version 7 with everything it answered
// unchanged and no cache rows; a read-only open refuses it until then.
// Cache rows are then written, read and deleted beside the rest.
func TestMigrateCacheV7(t *testing.T) {
	db, want := migratedFrom(t, 6)
	err := db.Update(func(tx *Tx) error {
		n := 0
		if err := tx.ForEachCached(func(string, string, Cached) error { n++; return nil }); err != nil {
			return err
		}
		if err := tx.ForEachCachedTag(func(string, string, CachedTag) error { n++; return nil }); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("%d cache rows in a migrated store", n)
		}
		if err := tx.PutCached("hub/a", "sha256:1", Cached{Pulled: 5, Fetched: 3}); err != nil {
			return err
		}
		if err := tx.PutCached("hub/a/b", "sha256:0", Cached{Pulled: 9}); err != nil {
			return err
		}
		return tx.PutCachedTag("hub/a", "latest", CachedTag{Checked: 7, Upstream: "sha256:1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		c, ok, err := tx.Cached("hub/a", "sha256:1")
		if err != nil || !ok || c != (Cached{Pulled: 5, Fetched: 3}) {
			t.Errorf("cached row %+v %v %v", c, ok, err)
		}
		var in []string
		if err := tx.CachedIn("hub/a", func(d string, _ Cached) error { in = append(in, d); return nil }); err != nil {
			return err
		}
		if len(in) != 1 || in[0] != "sha256:1" {
			t.Errorf("rows of hub/a: %v (hub/a/b's must not be among them)", in)
		}
		var all []string
		if err := tx.ForEachCached(func(repo, d string, _ Cached) error { all = append(all, repo+"@"+d); return nil }); err != nil {
			return err
		}
		if len(all) != 2 || all[0] != "hub/a@sha256:1" || all[1] != "hub/a/b@sha256:0" {
			t.Errorf("all rows: %v", all)
		}
		ct, ok, err := tx.CachedTag("hub/a", "latest")
		if err != nil || !ok || ct != (CachedTag{Checked: 7, Upstream: "sha256:1"}) {
			t.Errorf("cachedtags row %+v %v %v", ct, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("cache rows changed what the store answers:\n%s\nwant\n%s", got, want)
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.DeleteCached("hub/a", "sha256:1"); err != nil {
			return err
		}
		return tx.DeleteCachedTag("hub/a", "latest")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		if _, ok, err := tx.Cached("hub/a", "sha256:1"); ok || err != nil {
			t.Errorf("deleted cached row: %v %v", ok, err)
		}
		if _, ok, err := tx.CachedTag("hub/a", "latest"); ok || err != nil {
			t.Errorf("deleted cachedtags row: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
