package backendtest

import (
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// testBatchGet: a transaction that is a backend.BatchGetter reads a batch
// as Get would, key by key: values in the order asked, nil for absent keys
// and unknown tables, an empty value present, a key asked twice answered
// twice, its own writes seen; and reads after a batch (of its keys and of
// others) agree with it. In a View and in an Update.
func testBatchGet(t *testing.T, s backend.Store) {
	other := []byte("t2")
	update(t, s, func(tx backend.Tx) error {
		for _, kv := range []struct{ tbl, k, v string }{{"t", "a", "1"}, {"t", "b", ""}, {"t2", "a", "2"}, {"t", "z", "26"}} {
			if err := tx.Put([]byte(kv.tbl), []byte(kv.k), []byte(kv.v)); err != nil {
				return err
			}
		}
		return nil
	})
	keys := []backend.Key{
		{Table: tbl, Key: []byte("a")},
		{Table: tbl, Key: []byte("b")},
		{Table: tbl, Key: []byte("missing")},
		{Table: other, Key: []byte("a")},
		{Table: []byte("never"), Key: []byte("a")},
		{Table: tbl, Key: []byte("a")},
	}
	want := []*string{ptr("1"), ptr(""), nil, ptr("2"), nil, ptr("1")}
	check := func(what string, got [][]byte, want []*string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values for %d keys", what, len(got), len(want))
		}
		for i := range want {
			switch {
			case want[i] == nil && got[i] != nil:
				t.Errorf("%s: key %d = %q, want absent", what, i, got[i])
			case want[i] != nil && got[i] == nil:
				t.Errorf("%s: key %d absent, want %q", what, i, *want[i])
			case want[i] != nil && string(got[i]) != *want[i]:
				t.Errorf("%s: key %d = %q, want %q", what, i, got[i], *want[i])
			}
		}
	}
	offered := false
	runs := 0
	err := s.View(func(tx backend.Tx) error {
		runs++
		bg, ok := tx.(backend.BatchGetter)
		if !ok {
			return nil
		}
		offered = true
		got, err := bg.GetBatch(keys)
		if err != nil {
			return err
		}
		check("View batch", got, want)
		// Gets of the batch's keys agree with it; then a key outside it.
		for i, k := range keys {
			v, err := tx.Get(k.Table, k.Key)
			if err != nil {
				return err
			}
			check(fmt.Sprintf("Get after batch %d", i), [][]byte{v}, want[i:i+1])
		}
		v, err := tx.Get(tbl, []byte("z"))
		if err != nil {
			return err
		}
		check("Get outside batch", [][]byte{v}, []*string{ptr("26")})
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if !offered {
		return
	}
	if runs < 1 || runs > 2 {
		t.Errorf("View ran its closure %d times, want once or twice", runs)
	}
	update(t, s, func(tx backend.Tx) error {
		bg := tx.(backend.BatchGetter)
		if err := tx.Put(tbl, []byte("missing"), []byte("now")); err != nil {
			return err
		}
		if err := tx.Delete(tbl, []byte("b")); err != nil {
			return err
		}
		got, err := bg.GetBatch(keys)
		if err != nil {
			return err
		}
		check("Update batch after writes", got, []*string{ptr("1"), nil, ptr("now"), ptr("2"), nil, ptr("1")})
		// A write after the batch is seen by the next one.
		if err := tx.Put(tbl, []byte("a"), []byte("one")); err != nil {
			return err
		}
		got, err = bg.GetBatch(keys[:1])
		if err != nil {
			return err
		}
		check("Update batch after a later write", got, []*string{ptr("one")})
		got, err = bg.GetBatch(nil)
		if err != nil {
			return err
		}
		check("empty batch", got, nil)
		return nil
	})
	if got := string(get(t, s, tbl, []byte("missing"))); got != "now" {
		t.Errorf("after commit missing = %q", got)
	}
}

// testBatchGetOf: a key of a batch may end with the value of another key
// of it (backend.Key.Of), read in the same batch: it reads as absent when
// that value is absent, and a later Get of the whole key agrees.
func testBatchGetOf(t *testing.T, s backend.Store) {
	other := []byte("t2")
	update(t, s, func(tx backend.Tx) error {
		for _, kv := range []struct{ tbl, k, v string }{{"t", "ptr", "a"}, {"t2", "xa", "target"}, {"t2", "xb", "other"}} {
			if err := tx.Put([]byte(kv.tbl), []byte(kv.k), []byte(kv.v)); err != nil {
				return err
			}
		}
		return nil
	})
	keys := []backend.Key{
		{Table: other, Key: []byte("x"), Of: 2}, // a key may name a later one
		{Table: tbl, Key: []byte("ptr")},
		{Table: tbl, Key: []byte("noptr")},
		{Table: other, Key: []byte("x"), Of: 3},
		{Table: other, Key: []byte("y"), Of: 2},
		{Table: tbl, Key: []byte("ptr")},
		{Table: other, Key: []byte("x"), Of: 6},
	}
	want := []string{"target", "a", "", "", "", "a", "target"}
	check := func(what string, got [][]byte, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values for %d keys", what, len(got), len(want))
		}
		for i := range want {
			if (got[i] == nil) != (want[i] == "") || string(got[i]) != want[i] {
				t.Errorf("%s: key %d = %q, want %q (\"\": absent)", what, i+1, got[i], want[i])
			}
		}
	}
	offered := false
	err := s.View(func(tx backend.Tx) error {
		bg, ok := tx.(backend.BatchGetter)
		if !ok {
			return nil
		}
		offered = true
		got, err := bg.GetBatch(keys)
		if err != nil {
			return err
		}
		check("View batch", got, want)
		v, err := tx.Get(other, []byte("xa"))
		if err != nil {
			return err
		}
		check("Get of the whole key", [][]byte{v}, []string{"target"})
		if _, err := bg.GetBatch([]backend.Key{{Table: tbl, Key: []byte("k"), Of: 1}}); err == nil {
			t.Errorf("a key naming itself was read")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if !offered {
		return
	}
	update(t, s, func(tx backend.Tx) error {
		bg := tx.(backend.BatchGetter)
		if err := tx.Put(tbl, []byte("ptr"), []byte("b")); err != nil {
			return err
		}
		got, err := bg.GetBatch(keys[:2])
		if err != nil {
			return err
		}
		check("Update batch after the named value changed", got, []string{"other", "b"})
		// The named value known already: the key is read whole.
		if err := tx.Put(tbl, []byte("ptr"), []byte("a")); err != nil {
			return err
		}
		if _, err := tx.Get(tbl, []byte("ptr")); err != nil {
			return err
		}
		got, err = bg.GetBatch(keys[:2])
		if err != nil {
			return err
		}
		check("Update batch with the named value known", got, []string{"target", "a"})
		return nil
	})
}

func ptr(s string) *string { return &s }
