package backendtest

import (
	"errors"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// testInsert: a transaction that is a backend.Inserter writes an absent
// key, and fails with ErrExists, storing nothing of the transaction, on a
// present one (written before, or earlier in the same transaction); of
// concurrent inserts of one key, exactly one commits.
func testInsert(t *testing.T, s backend.Store) {
	skipUnlessOffered[backend.Inserter](t, s, "backend.Inserter")
	inserter := func(tx backend.Tx) backend.Inserter { return tx.(backend.Inserter) }
	update(t, s, func(tx backend.Tx) error {
		return inserter(tx).Insert(tbl, []byte("a"), []byte("1"))
	})
	// Present: refused, and the transaction's other write with it.
	err := s.Update(func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("other"), []byte("x")); err != nil {
			return err
		}
		return inserter(tx).Insert(tbl, []byte("a"), []byte("2"))
	})
	if !errors.Is(err, backend.ErrExists) {
		t.Fatalf("insert of a present key: %v, want ErrExists", err)
	}
	// Inserted earlier in the same transaction.
	err = s.Update(func(tx backend.Tx) error {
		if err := inserter(tx).Insert(tbl, []byte("b"), []byte("1")); err != nil {
			return err
		}
		return inserter(tx).Insert(tbl, []byte("b"), []byte("2"))
	})
	if !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second insert of a key in one transaction: %v, want ErrExists", err)
	}
	// Deleted, then inserted again: written.
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Delete(tbl, []byte("a")); err != nil {
			return err
		}
		return inserter(tx).Insert(tbl, []byte("a"), []byte("3"))
	})
	want := map[string]string{"a": "3"}
	err = s.View(func(tx backend.Tx) error {
		for _, k := range []string{"a", "b", "other"} {
			v, err := tx.Get(tbl, []byte(k))
			if err != nil {
				return err
			}
			w, ok := want[k]
			if (v != nil) != ok || string(v) != w {
				t.Errorf("%s = %q (present %v), want %q (present %v)", k, v, v != nil, w, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent inserts of one key: one wins, the others see it.
	const n = 8
	won := race(t, n, backend.ErrExists, func(i int) error {
		return s.Update(func(tx backend.Tx) error {
			return inserter(tx).Insert(tbl, []byte("race"), []byte{byte('0' + i)})
		})
	})
	if won != 1 {
		t.Errorf("%d of %d concurrent inserts of one key committed, want 1", won, n)
	}
}

// skipUnlessOffered skips t unless the store's transactions are an I
// (named name), an interface a store may offer.
func skipUnlessOffered[I any](t *testing.T, s backend.Store, name string) {
	t.Helper()
	offered := false
	if err := s.View(func(tx backend.Tx) error { _, offered = tx.(I); return nil }); err != nil {
		t.Fatal(err)
	}
	if !offered {
		t.Skipf("the store's transactions are not a %s", name)
	}
}

// race runs fn(0) to fn(n-1) at once and returns how many succeeded; one
// that fails with anything but lost (errors.Is) is an error of t.
func race(t *testing.T, n int, lost error, fn func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lost):
			t.Errorf("a concurrent transaction failed with %v, want %v", err, lost)
		}
	}
	return won
}
