package backendtest

import (
	"errors"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// The counter tests of the suite (Add and Counter).

func counter(t *testing.T, s backend.Store, table, key []byte) int64 {
	t.Helper()
	var n int64
	err := s.View(func(tx backend.Tx) error {
		var err error
		n, err = tx.Counter(table, key)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return n
}

// testCounterNamespace: counters and values of the same table and key do
// not see each other, and a counter never added reads 0.
func testCounterNamespace(t *testing.T, s backend.Store) {
	k := []byte("k")
	if n := counter(t, s, tbl, k); n != 0 {
		t.Fatalf("never added: %d", n)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Add(tbl, k, 5) })
	if v := get(t, s, tbl, k); v != nil {
		t.Fatalf("Get sees a counter: %x", v)
	}
	if e := scanAll(t, s, tbl, nil); len(e) != 0 {
		t.Fatalf("Scan sees a counter: %v", e)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Put(tbl, k, []byte("value")) })
	if n := counter(t, s, tbl, k); n != 5 {
		t.Fatalf("a Put changed the counter: %d", n)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Delete(tbl, k) })
	if n := counter(t, s, tbl, k); n != 5 {
		t.Fatalf("a Delete changed the counter: %d", n)
	}
	other := []byte("other")
	if n := counter(t, s, other, k); n != 0 {
		t.Fatalf("another table's counter reads %d", n)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Add(tbl, k, -5) })
	if n := counter(t, s, tbl, k); n != 0 {
		t.Fatalf("back to zero: %d", n)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Add(tbl, k, -3) })
	if n := counter(t, s, tbl, k); n != -3 {
		t.Fatalf("below zero: %d", n)
	}
	err := s.View(func(tx backend.Tx) error { return tx.Add(tbl, k, 1) })
	if !errors.Is(err, backend.ErrReadOnly) {
		t.Fatalf("Add in a View: %v, want ErrReadOnly", err)
	}
}

// testCounterOwnAdds: Counter sees the transaction's own Adds; a rolled
// back transaction's Adds leave nothing.
func testCounterOwnAdds(t *testing.T, s backend.Store) {
	k := []byte("own")
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Add(tbl, k, 7); err != nil {
			return err
		}
		if err := tx.Add(tbl, k, 3); err != nil {
			return err
		}
		n, err := tx.Counter(tbl, k)
		if err == nil && n != 10 {
			t.Errorf("inside the transaction: %d, want 10", n)
		}
		return err
	})
	boom := errors.New("roll back")
	err := s.Update(func(tx backend.Tx) error {
		if err := tx.Add(tbl, k, 100); err != nil {
			return err
		}
		if err := tx.Add(tbl, []byte("new"), 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	if n := counter(t, s, tbl, k); n != 10 {
		t.Fatalf("after a rolled-back Add: %d, want 10", n)
	}
	if n := counter(t, s, tbl, []byte("new")); n != 0 {
		t.Fatalf("a rolled-back Add created a counter: %d", n)
	}
}

// testConcurrentAdds: many concurrent Adds sum exactly.
func testConcurrentAdds(t *testing.T, s backend.Store) {
	const workers, each = 8, 25
	k := []byte("sum")
	Concurrently(t, workers, each, func(w int) error {
		return s.Update(func(tx backend.Tx) error { return tx.Add(tbl, k, int64(w+1)) })
	})
	if n, want := counter(t, s, tbl, k), int64(each*workers*(workers+1)/2); n != want {
		t.Fatalf("sum = %d, want %d", n, want)
	}
}
