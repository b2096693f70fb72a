package kv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Upload states are written, read back, listed in id order, replaced and
// deleted on the backend under test; an empty one reads as present, and
// they survive a reopen.
func TestUploadStates(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		for id, st := range map[string]string{"b-2": `{"size":2}`, "a-1": `{"size":1}`, "c-3": ""} {
			if err := tx.CreateUploadState(id, []byte(st)); err != nil {
				return err
			}
		}
		if err := tx.CreateUploadState("", []byte("x")); err == nil {
			return fmt.Errorf("a state without an id was written")
		}
		if err := tx.ReplaceUploadState("", []byte("x"), []byte("y")); err == nil {
			return fmt.Errorf("a state without an id was replaced")
		}
		return tx.ReplaceUploadState("b-2", []byte(`{"size":2}`), []byte(`{"size":22}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(db *DB) string {
		t.Helper()
		var got []string
		err := db.View(func(tx *Tx) error {
			got = nil
			return tx.UploadStates(func(id string, st []byte) (bool, error) {
				got = append(got, id+"="+string(st))
				return true, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	if got, want := list(db), `a-1={"size":1} b-2={"size":22} c-3=`; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	err = db.View(func(tx *Tx) error {
		if st, err := tx.UploadState("c-3"); err != nil || st == nil || len(st) != 0 {
			return fmt.Errorf("empty state read as %q (nil %v), %v", st, st == nil, err)
		}
		if st, err := tx.UploadState("d-4"); err != nil || st != nil {
			return fmt.Errorf("absent state read as %q, %v", st, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A create writes an absent state and refuses a present one, with the
	// rest of its transaction.
	if err := db.Update(func(tx *Tx) error { return tx.CreateUploadState("d-4", []byte("new")) }); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.CreateUploadState("e-5", []byte("x")); err != nil {
			return err
		}
		return tx.CreateUploadState("b-2", []byte("again"))
	})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("create over a state: %v, want ErrExists", err)
	}
	if got, want := list(db), `a-1={"size":1} b-2={"size":22} c-3= d-4=new`; got != want {
		t.Fatalf("after the creates: states %q, want %q", got, want)
	}
	// A replace writes over the state its caller saw, and refuses,
	// with the rest of its transaction, one that is another or gone.
	if err := db.Update(func(tx *Tx) error { return tx.ReplaceUploadState("d-4", []byte("new"), []byte("newer")) }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, prev string }{{"d-4", "new"}, {"gone", "new"}} {
		err = db.Update(func(tx *Tx) error {
			if err := tx.CreateUploadState("e-5", []byte("x")); err != nil {
				return err
			}
			return tx.ReplaceUploadState(c.id, []byte(c.prev), []byte("lost"))
		})
		if !errors.Is(err, ErrStale) {
			t.Fatalf("replace of %s's state from %q: %v, want ErrStale", c.id, c.prev, err)
		}
	}
	if err := db.Update(func(tx *Tx) error { return tx.ReplaceUploadState("d-4", []byte("newer"), []byte("new")) }); err != nil {
		t.Fatal(err)
	}
	if got, want := list(db), `a-1={"size":1} b-2={"size":22} c-3= d-4=new`; got != want {
		t.Fatalf("after the replaces: states %q, want %q", got, want)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteUploadState("a-1") }); err != nil {
		t.Fatal(err)
	}
	// Deleting an absent one is no error.
	if err := db.Update(func(tx *Tx) error { return tx.DeleteUploadState("a-1") }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, want := list(db), `b-2={"size":22} c-3= d-4=new`; got != want {
		t.Fatalf("after a reopen: states %q, want %q", got, want)
	}
}
