// Package backendtest is the conformance suite of backend.Store: every
// implementation runs Run against fresh stores of its own. It asserts the
// contract of package backend only (byte order, snapshots, atomicity,
// re-runnable updates), never a quirk of one implementation.
package backendtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// Run runs the suite; open returns a new, empty store for each subtest
// (the suite closes it).
func Run(t *testing.T, open func(t *testing.T) backend.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, backend.Store)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"EmptyValueIsPresent", testEmptyValue},
		{"MissingTableReadsEmpty", testMissingTable},
		{"ScanByteOrder", testScanOrder},
		{"ScanFrom", testScanFrom},
		{"ScanStopsEarly", testScanStop},
		{"ScanError", testScanError},
		{"TablesIndependent", testTablesIndependent},
		{"RollbackOnError", testRollback},
		{"ViewSeesNoUncommittedWrite", testViewIsolation},
		{"ViewIsReadOnly", testViewReadOnly},
		{"CopiedValuesOutliveTx", testCopies},
		{"ConcurrentUpdatesLoseNothing", testConcurrentCounter},
		{"UpdateReRunTolerated", testReRun},
		{"CounterNamespace", testCounterNamespace},
		{"CounterSeesOwnAddsNotRolledBack", testCounterOwnAdds},
		{"ConcurrentAddsSumExactly", testConcurrentAdds},
		{"ScanRangeIfOffered", testScanRange},
		{"BatchGetIfOffered", testBatchGet},
		{"BatchGetOfIfOffered", testBatchGetOf},
		{"InsertIfOffered", testInsert},
		{"ReplaceIfOffered", testReplace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.fn(t, s)
		})
	}
}

var tbl = []byte("t")

func update(t *testing.T, s backend.Store, fn func(backend.Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func get(t *testing.T, s backend.Store, table, key []byte) []byte {
	t.Helper()
	var out []byte
	err := s.View(func(tx backend.Tx) error {
		v, err := tx.Get(table, key)
		if v != nil {
			out = append([]byte{}, v...)
		}
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return out
}

type kv struct{ k, v string }

func scanAll(t *testing.T, s backend.Store, table, from []byte) []kv {
	t.Helper()
	var out []kv
	err := s.View(func(tx backend.Tx) error {
		out = nil
		return tx.Scan(table, from, func(k, v []byte) (bool, error) {
			out = append(out, kv{string(k), string(v)})
			return true, nil
		})
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func testGetPutDelete(t *testing.T, s backend.Store) {
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("a"), []byte("1")); err != nil {
			return err
		}
		// A write is visible to the rest of its own transaction.
		v, err := tx.Get(tbl, []byte("a"))
		if err != nil {
			return err
		}
		if string(v) != "1" {
			return fmt.Errorf("read own write: %q", v)
		}
		return tx.Put(tbl, []byte("b"), []byte("2"))
	})
	if got := get(t, s, tbl, []byte("a")); string(got) != "1" {
		t.Fatalf("a = %q, want 1", got)
	}
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("a"), []byte("one")); err != nil {
			return err
		}
		if err := tx.Delete(tbl, []byte("b")); err != nil {
			return err
		}
		return tx.Delete(tbl, []byte("never-there"))
	})
	if got := get(t, s, tbl, []byte("a")); string(got) != "one" {
		t.Fatalf("a = %q after overwrite, want one", got)
	}
	if got := get(t, s, tbl, []byte("b")); got != nil {
		t.Fatalf("b = %q after delete, want absent", got)
	}
}

func testEmptyValue(t *testing.T, s backend.Store) {
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("e"), []byte{}); err != nil {
			return err
		}
		if err := tx.Put(tbl, []byte("n"), nil); err != nil {
			return err
		}
		for _, k := range []string{"e", "n"} {
			if v, err := tx.Get(tbl, []byte(k)); err != nil || v == nil {
				return fmt.Errorf("empty value %s in its own transaction: %v, %v", k, v, err)
			}
		}
		return nil
	})
	err := s.View(func(tx backend.Tx) error {
		for _, k := range []string{"e", "n"} {
			v, err := tx.Get(tbl, []byte(k))
			if err != nil {
				return err
			}
			if v == nil || len(v) != 0 {
				return fmt.Errorf("empty value %s reads as %v", k, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := scanAll(t, s, tbl, nil); len(got) != 2 {
		t.Fatalf("scan of two empty values: %v", got)
	}
}

func testMissingTable(t *testing.T, s backend.Store) {
	err := s.View(func(tx backend.Tx) error {
		v, err := tx.Get([]byte("nothing"), []byte("k"))
		if err != nil || v != nil {
			return fmt.Errorf("get in a missing table: %v, %v", v, err)
		}
		return tx.Scan([]byte("nothing"), nil, func(k, _ []byte) (bool, error) {
			return false, fmt.Errorf("missing table scanned %q", k)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Delete([]byte("nothing"), []byte("k")) })
}

// orderKeys are in ascending byte order, with 0x00 and 0xff bytes, keys
// that are prefixes of others and bytes above 0x7f (unsigned order).
var orderKeys = []string{
	"\x00", "\x00\x00", "\x00\x01", "\x01", "a", "a\x00", "a\x00b", "a\x00\xff", "a/b", "ab", "b",
	"\x7f", "\x80", "\xfe", "\xff", "\xff\x00", "\xff\xff",
}

func putOrderKeys(t *testing.T, s backend.Store) {
	update(t, s, func(tx backend.Tx) error {
		// Written in reverse so that insertion order cannot pass for byte order.
		for i := len(orderKeys) - 1; i >= 0; i-- {
			if err := tx.Put(tbl, []byte(orderKeys[i]), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	})
}

func testScanOrder(t *testing.T, s backend.Store) {
	putOrderKeys(t, s)
	got := scanAll(t, s, tbl, nil)
	if len(got) != len(orderKeys) {
		t.Fatalf("scan returned %d keys, want %d: %q", len(got), len(orderKeys), got)
	}
	for i, e := range got {
		if e.k != orderKeys[i] || e.v != string([]byte{byte(i)}) {
			t.Fatalf("scan[%d] = %q=%q, want %q", i, e.k, e.v, orderKeys[i])
		}
	}
}

func testScanFrom(t *testing.T, s backend.Store) {
	putOrderKeys(t, s)
	for _, from := range []string{"\x00", "a\x00", "a\x00a", "a0", "\x80", "\xff\x00", "\xff\xff\x00"} {
		var want []string
		for _, k := range orderKeys {
			if k >= from {
				want = append(want, k)
			}
		}
		got := scanAll(t, s, tbl, []byte(from))
		if len(got) != len(want) {
			t.Fatalf("scan from %q: %d keys, want %d", from, len(got), len(want))
		}
		for i := range got {
			if got[i].k != want[i] {
				t.Fatalf("scan from %q: [%d] = %q, want %q", from, i, got[i].k, want[i])
			}
		}
	}
}

func testScanStop(t *testing.T, s backend.Store) {
	putOrderKeys(t, s)
	var seen []string
	err := s.View(func(tx backend.Tx) error {
		return tx.Scan(tbl, []byte("a"), func(k, _ []byte) (bool, error) {
			seen = append(seen, string(k))
			return len(seen) < 3, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a\x00", "a\x00b"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("scan stopped after %q, want %q", seen, want)
	}
}

func testScanError(t *testing.T, s backend.Store) {
	putOrderKeys(t, s)
	boom := errors.New("boom")
	n := 0
	err := s.View(func(tx backend.Tx) error {
		return tx.Scan(tbl, nil, func(k, _ []byte) (bool, error) {
			n++
			return true, boom
		})
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("scan with a failing callback: err %v after %d calls", err, n)
	}
}

func testTablesIndependent(t *testing.T, s backend.Store) {
	a, b := []byte("alpha"), []byte("alpha\x00") // one name a prefix of the other
	update(t, s, func(tx backend.Tx) error {
		if err := tx.Put(a, []byte("k"), []byte("in a")); err != nil {
			return err
		}
		return tx.Put(b, []byte("k"), []byte("in b"))
	})
	if got := string(get(t, s, a, []byte("k"))); got != "in a" {
		t.Fatalf("table a: %q", got)
	}
	if got := string(get(t, s, b, []byte("k"))); got != "in b" {
		t.Fatalf("table b: %q", got)
	}
	update(t, s, func(tx backend.Tx) error { return tx.Delete(a, []byte("k")) })
	if got := scanAll(t, s, b, nil); len(got) != 1 || got[0].v != "in b" {
		t.Fatalf("deleting from a changed b: %q", got)
	}
	if got := scanAll(t, s, a, nil); len(got) != 0 {
		t.Fatalf("a after delete: %q", got)
	}
}

func testRollback(t *testing.T, s backend.Store) {
	update(t, s, func(tx backend.Tx) error { return tx.Put(tbl, []byte("kept"), []byte("1")) })
	boom := errors.New("boom")
	err := s.Update(func(tx backend.Tx) error {
		if err := tx.Put(tbl, []byte("kept"), []byte("2")); err != nil {
			return err
		}
		if err := tx.Put([]byte("other"), []byte("new"), []byte("x")); err != nil {
			return err
		}
		if err := tx.Delete(tbl, []byte("kept")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if got := string(get(t, s, tbl, []byte("kept"))); got != "1" {
		t.Fatalf("after rollback kept = %q, want 1", got)
	}
	if got := scanAll(t, s, []byte("other"), nil); len(got) != 0 {
		t.Fatalf("after rollback a new table holds %q", got)
	}
}

func testViewIsolation(t *testing.T, s backend.Store) {
	update(t, s, func(tx backend.Tx) error { return tx.Put(tbl, []byte("k"), []byte("old")) })
	inTx, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Update(func(tx backend.Tx) error {
			if err := tx.Put(tbl, []byte("k"), []byte("new")); err != nil {
				return err
			}
			if err := tx.Put(tbl, []byte("k2"), []byte("new")); err != nil {
				return err
			}
			select {
			case <-inTx: // a re-run: already signalled
			default:
				close(inTx)
			}
			<-release
			return nil
		})
	}()
	<-inTx
	// The writer is inside its transaction, its writes made, until release.
	if got := string(get(t, s, tbl, []byte("k"))); got != "old" {
		t.Errorf("a View saw an uncommitted write: %q", got)
	}
	if got := get(t, s, tbl, []byte("k2")); got != nil {
		t.Errorf("a View saw an uncommitted key: %q", got)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, tbl, []byte("k"))); got != "new" {
		t.Fatalf("after commit k = %q", got)
	}
}

func testViewReadOnly(t *testing.T, s backend.Store) {
	err := s.View(func(tx backend.Tx) error { return tx.Put(tbl, []byte("k"), []byte("v")) })
	if !errors.Is(err, backend.ErrReadOnly) {
		t.Fatalf("Put in a View: %v, want ErrReadOnly", err)
	}
	if got := get(t, s, tbl, []byte("k")); got != nil {
		t.Fatalf("a write in a View was stored: %q", got)
	}
}

func testCopies(t *testing.T, s backend.Store) {
	want := map[string]string{}
	update(t, s, func(tx backend.Tx) error {
		for i := 0; i < 200; i++ {
			k, v := fmt.Sprintf("k%03d", i), bytes.Repeat([]byte{byte(i)}, 100+i)
			want[k] = string(v)
			if err := tx.Put(tbl, []byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	got := map[string]string{}
	err := s.View(func(tx backend.Tx) error {
		return tx.Scan(tbl, nil, func(k, v []byte) (bool, error) {
			got[string(k)] = string(v) // string() copies
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Churn the store so that any memory the values came from is reused.
	update(t, s, func(tx backend.Tx) error {
		for k := range want {
			if err := tx.Put(tbl, []byte(k), []byte("overwritten")); err != nil {
				return err
			}
		}
		return nil
	})
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("copied value of %s changed after its transaction", k)
		}
	}
}

func testConcurrentCounter(t *testing.T, s backend.Store) {
	const workers, each = 8, 25
	key := []byte("counter")
	Concurrently(t, workers, each, func(int) error {
		return s.Update(func(tx backend.Tx) error {
			v, err := tx.Get(tbl, key)
			if err != nil {
				return err
			}
			var n uint64
			if len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			out := make([]byte, 8)
			binary.BigEndian.PutUint64(out, n+1)
			return tx.Put(tbl, key, out)
		})
	})
	v := get(t, s, tbl, key)
	if len(v) != 8 || binary.BigEndian.Uint64(v) != workers*each {
		t.Fatalf("counter = %x after %d increments", v, workers*each)
	}
}

// testReRun: concurrent updates, one of whose fn fails on its first run.
// The store may share commits and re-run fns; whatever it does, each
// Update that returns nil leaves exactly one run's writes, the failing one
// leaves none if it returns the error, and no run sees an earlier run's
// writes.
func testReRun(t *testing.T, s backend.Store) {
	const workers = 16
	flaky := errors.New("first run fails")
	var mu sync.Mutex
	runs := map[int]int{}
	results := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte(fmt.Sprintf("w%02d", w))
			results[w] = s.Update(func(tx backend.Tx) error {
				mu.Lock()
				runs[w]++
				first := runs[w] == 1
				mu.Unlock()
				v, err := tx.Get(tbl, key)
				if err != nil {
					return err
				}
				if v != nil {
					return fmt.Errorf("worker %d sees a write of an earlier run", w)
				}
				if err := tx.Put(tbl, key, []byte{1}); err != nil {
					return err
				}
				if w == 0 && first {
					return flaky
				}
				return nil
			})
		}()
	}
	wg.Wait()
	got := map[string]bool{}
	for _, e := range scanAll(t, s, tbl, nil) {
		got[e.k] = true
	}
	for w, err := range results {
		key := fmt.Sprintf("w%02d", w)
		switch {
		case err == nil && !got[key]:
			t.Errorf("worker %d: Update succeeded but its write is missing", w)
		case errors.Is(err, flaky) && got[key]:
			t.Errorf("worker %d: Update failed but its write was stored", w)
		case err != nil && !errors.Is(err, flaky):
			t.Errorf("worker %d: %v", w, err)
		}
	}
	if len(got) < workers-1 {
		t.Fatalf("%d keys after %d updates", len(got), workers)
	}
}

// Concurrently runs fn each times in each of workers goroutines (fn gets
// the worker's number) and fails the test on the first error; a backend's
// own tests of concurrent writers use it too.
func Concurrently(t *testing.T, workers, each int, fn func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := fn(w); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
