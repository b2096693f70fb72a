package pgkv_test

import (
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func batchKeys(names ...string) []backend.Key {
	out := make([]backend.Key, len(names))
	for i, n := range names {
		out[i] = backend.Key{Table: []byte("t"), Key: []byte(n)}
	}
	return out
}

// A View that reads only its first batch is one round trip: the batch
// goes alone, without BEGIN or ROLLBACK, and the Gets after it are answered
// from it. A View that reads outside it runs again in a transaction; one
// whose first read is no batch is a transaction from the start.
func TestBatchRoundTrips(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	put(t, s, 3) // k0000..k0002
	runs := 0
	if n := roundTrips(t, s, func(tx backend.Tx) error {
		runs++
		vs, err := tx.(backend.BatchGetter).GetBatch(batchKeys("k0000", "k0002", "absent"))
		if err != nil {
			return err
		}
		if vs[0] == nil || vs[1] == nil || vs[2] != nil {
			return fmt.Errorf("batch read %q", vs)
		}
		for _, k := range []string{"k0000", "k0002", "absent"} {
			if _, err := tx.Get([]byte("t"), []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); n != 1 || runs != 1 {
		t.Errorf("a View reading its first batch only took %d round trips in %d runs, want 1 in 1", n, runs)
	}

	runs = 0
	if n := roundTrips(t, s, func(tx backend.Tx) error {
		runs++
		if _, err := tx.(backend.BatchGetter).GetBatch(batchKeys("k0000")); err != nil {
			return err
		}
		v, err := tx.Get([]byte("t"), []byte("k0001"))
		if err == nil && v == nil {
			err = fmt.Errorf("k0001 absent")
		}
		return err
	}); n != 4 || runs != 2 {
		// The lone batch; then BEGIN with the batch, the Get, ROLLBACK.
		t.Errorf("a View reading outside its batch took %d round trips in %d runs, want 4 in 2", n, runs)
	}

	if n := roundTrips(t, s, func(tx backend.Tx) error {
		if _, err := tx.Get([]byte("t"), []byte("k0001")); err != nil {
			return err
		}
		_, err := tx.(backend.BatchGetter).GetBatch(batchKeys("k0000", "k0002"))
		return err
	}); n != 3 {
		t.Errorf("a View with a batch after a Get took %d round trips, want 3 (BEGIN with the Get, the batch, ROLLBACK)", n)
	}

	before := s.TxStats().RoundTrips
	if err := s.Update(func(tx backend.Tx) error {
		if err := tx.Put([]byte("t"), []byte("new"), []byte("v")); err != nil {
			return err
		}
		vs, err := tx.(backend.BatchGetter).GetBatch(batchKeys("new", "k0000", "k0001"))
		if err == nil && (vs[0] == nil || vs[1] == nil || vs[2] == nil) {
			err = fmt.Errorf("batch read %q", vs)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// BEGIN, the write and the batch (which does not ask for the key the
	// transaction wrote); COMMIT.
	if n := s.TxStats().RoundTrips - before; n != 2 {
		t.Errorf("an Update with a write and a batch took %d round trips, want 2", n)
	}
}

// A View that read its first batch alone, outside a transaction, and then
// reads another key must not mix two snapshots: a write committed between
// its batch and its next read is seen whole or not at all.
func TestBatchViewOneSnapshot(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	k := func(s string) []byte { return []byte(s) }
	if err := s.Update(func(tx backend.Tx) error {
		if err := tx.Put(k("t"), k("a"), k("1")); err != nil {
			return err
		}
		return tx.Put(k("t"), k("b"), k("1"))
	}); err != nil {
		t.Fatal(err)
	}
	runs := 0
	var a, b string
	err := s.View(func(tx backend.Tx) error {
		runs++
		vs, err := tx.(backend.BatchGetter).GetBatch([]backend.Key{{Table: k("t"), Key: k("a")}})
		if err != nil {
			return err
		}
		a = string(vs[0])
		if runs == 1 {
			// Another writer commits both keys between the batch and
			// the next read.
			if err := s.Update(func(w backend.Tx) error {
				if err := w.Put(k("t"), k("a"), k("2")); err != nil {
					return err
				}
				return w.Put(k("t"), k("b"), k("2"))
			}); err != nil {
				return err
			}
		}
		v, err := tx.Get(k("t"), k("b"))
		b = string(v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("one View read a = %q and b = %q: two snapshots", a, b)
	}
	if runs != 2 || a != "2" {
		t.Errorf("the View ran %d times and read %q; want a second run, in a transaction begun after the write", runs, a)
	}
}
