package backendtest

import (
	"errors"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// testReplace: a transaction that is a backend.Replacer writes a key that
// holds the value the caller saw, and fails with ErrStale, storing nothing
// of the transaction, on a key that holds another value (written before,
// or earlier in the same transaction) or none; of concurrent replaces of
// one value, exactly one commits.
func testReplace(t *testing.T, s backend.Store) {
	skipUnlessOffered[backend.Replacer](t, s, "backend.Replacer")
	replacer := func(tx backend.Tx) backend.Replacer { return tx.(backend.Replacer) }
	update(t, s, func(tx backend.Tx) error { return tx.Put(tbl, []byte("a"), []byte("1")) })
	update(t, s, func(tx backend.Tx) error {
		return replacer(tx).Replace(tbl, []byte("a"), []byte("1"), []byte("2"))
	})
	// Another value, or none: refused, and the transaction's other
	// write with it.
	for _, c := range []struct{ key, old string }{{"a", "1"}, {"a", "22"}, {"a", ""}, {"absent", "1"}} {
		err := s.Update(func(tx backend.Tx) error {
			if err := tx.Put(tbl, []byte("other"), []byte("x")); err != nil {
				return err
			}
			return replacer(tx).Replace(tbl, []byte(c.key), []byte(c.old), []byte("3"))
		})
		if !errors.Is(err, backend.ErrStale) {
			t.Fatalf("replace of %s from %q: %v, want ErrStale", c.key, c.old, err)
		}
	}
	// Written earlier in the same transaction: replaced from that value
	// only.
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("b"), []byte("1")); err != nil {
			return err
		}
		return replacer(tx).Replace(tbl, []byte("b"), []byte("1"), []byte("2"))
	})
	err := s.Update(func(tx backend.Tx) error {
		if err := replacer(tx).Replace(tbl, []byte("b"), []byte("2"), []byte("3")); err != nil {
			return err
		}
		return replacer(tx).Replace(tbl, []byte("b"), []byte("2"), []byte("4"))
	})
	if !errors.Is(err, backend.ErrStale) {
		t.Fatalf("second replace of a key from the value it had before the first: %v, want ErrStale", err)
	}
	// Deleted earlier in the same transaction: refused.
	err = s.Update(func(tx backend.Tx) error {
		if err := tx.Delete(tbl, []byte("a")); err != nil {
			return err
		}
		return replacer(tx).Replace(tbl, []byte("a"), []byte("2"), []byte("5"))
	})
	if !errors.Is(err, backend.ErrStale) {
		t.Fatalf("replace of a key deleted in the same transaction: %v, want ErrStale", err)
	}
	want := map[string]string{"a": "2", "b": "2"}
	err = s.View(func(tx backend.Tx) error {
		for _, k := range []string{"a", "b", "other", "absent"} {
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
	// Concurrent replaces of one value: one wins, the others find it
	// changed.
	update(t, s, func(tx backend.Tx) error { return tx.Put(tbl, []byte("race"), []byte("0")) })
	const n = 8
	won := race(t, n, backend.ErrStale, func(i int) error {
		return s.Update(func(tx backend.Tx) error {
			return replacer(tx).Replace(tbl, []byte("race"), []byte("0"), []byte{byte('a' + i)})
		})
	})
	if won != 1 {
		t.Errorf("%d of %d concurrent replaces of one value committed, want 1", won, n)
	}
}
