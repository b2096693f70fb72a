package kv

import (
	"errors"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// A version 7 store (tags without push times) opens as version 8 with
// every tag's push time its manifest's Created, a tag of a missing
// manifest 0, everything else it answered unchanged; a read-only open
// refuses it until then. The rows are written a few tags per transaction.
func TestMigrateTagPushedV8(t *testing.T) {
	old := flattenBatch
	flattenBatch = 2
	t.Cleanup(func() { flattenBatch = old })
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillV3(t, db)
	created := map[string]int64{"team/a:v1": 11, "team/a:v2": 22, "team/b:v1": 33, "team/b:gone": 0}
	err = db.Update(func(tx *Tx) error {
		for _, x := range []struct{ repo, d string }{{"team/a", "sha256:m1"}, {"team/a", "sha256:m2"}, {"team/b", "sha256:m3"}} {
			m, _, err := tx.Manifest(x.repo, x.d)
			if err != nil {
				return err
			}
			m.Created = map[string]int64{"sha256:m1": 11, "sha256:m2": 22, "sha256:m3": 33}[x.d]
			if err := tx.PutManifest(x.repo, x.d, m, nil); err != nil {
				return err
			}
		}
		// A tag whose manifest is missing.
		return tx.PutTag("team/b", "gone", "sha256:nothing", 99)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshotV3(t, db)
	// Version 7 had no push times.
	err = db.store.Update(func(tx backend.Tx) error {
		var keys [][]byte
		if err := tx.Scan(tableTagPushed, nil, func(k, _ []byte) (bool, error) { keys = append(keys, clone(k)); return true, nil }); err != nil {
			return err
		}
		if len(keys) != 4 {
			t.Errorf("%d tagpushed rows before the rewind, want 4", len(keys))
		}
		for _, k := range keys {
			if err := tx.Delete(tableTagPushed, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	setVersion(t, db, 7)
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of version 7: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
	}
	err = db.View(func(tx *Tx) error {
		for _, repo := range []string{"team/a", "team/b"} {
			n := 0
			if err := tx.ForEachTagPushed(repo, func(tag string, pushed int64) error {
				n++
				if w, ok := created[repo+":"+tag]; !ok || pushed != w {
					t.Errorf("%s:%s pushed %d, want %d (known %v)", repo, tag, pushed, w, ok)
				}
				return nil
			}); err != nil {
				return err
			}
			if n != 2 {
				t.Errorf("%s: %d push times, want 2", repo, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Moves and deletes keep the rows in step.
	err = db.Update(func(tx *Tx) error {
		if err := tx.PutTag("team/a", "v1", "sha256:m2", 500); err != nil {
			return err
		}
		return tx.DeleteTag("team/b", "gone")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		if p, ok, err := tx.TagPushed("team/a", "v1"); err != nil || !ok || p != 500 {
			t.Errorf("moved tag pushed %d %v %v, want 500", p, ok, err)
		}
		if _, ok, err := tx.TagPushed("team/b", "gone"); err != nil || ok {
			t.Errorf("deleted tag still has a push time: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
