package pgkv_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	"github.com/kvreg/kvreg/kv/backend/backendtest"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

var ctbl = []byte("stats")

func counter(t *testing.T, s backend.Store, key string) int64 {
	t.Helper()
	var n int64
	err := s.View(func(tx backend.Tx) error {
		var err error
		n, err = tx.(interface {
			Counter(table, key []byte) (int64, error)
		}).Counter(ctbl, []byte(key))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type counters interface {
	backend.Tx
	Add(table, key []byte, delta int64) error
	Counter(table, key []byte) (int64, error)
}

func TestCounterAddAndRead(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	if n := counter(t, s, "never"); n != 0 {
		t.Fatalf("a counter never added reads %d", n)
	}
	err := s.Update(func(btx backend.Tx) error {
		tx := btx.(counters)
		if err := tx.Add(ctbl, []byte("a"), 5); err != nil {
			return err
		}
		if err := tx.Add(ctbl, []byte("a"), -2); err != nil {
			return err
		}
		// Counters and values of one table do not mix.
		if err := tx.Put(ctbl, []byte("a"), []byte("value")); err != nil {
			return err
		}
		n, err := tx.Counter(ctbl, []byte("a"))
		if err != nil || n != 3 {
			return fmt.Errorf("own adds read %d, %v; want 3", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(btx backend.Tx) error {
		tx := btx.(counters)
		if v, err := tx.Get(ctbl, []byte("a")); err != nil || string(v) != "value" {
			return fmt.Errorf("the value beside a counter: %q, %v", v, err)
		}
		var keys int
		if err := tx.Scan(ctbl, nil, func(_, _ []byte) (bool, error) { keys++; return true, nil }); err != nil {
			return err
		}
		if keys != 1 {
			return fmt.Errorf("scan sees %d keys, want the one value", keys)
		}
		if err := tx.Add(ctbl, []byte("a"), 1); !errors.Is(err, backend.ErrReadOnly) {
			return fmt.Errorf("Add in a View: %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := counter(t, s, "a"); n != 3 {
		t.Fatalf("a = %d, want 3", n)
	}
	// A rolled back Add is not counted.
	boom := errors.New("boom")
	if err := s.Update(func(btx backend.Tx) error {
		if err := btx.(counters).Add(ctbl, []byte("a"), 100); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := counter(t, s, "a"); n != 3 {
		t.Fatalf("a = %d after a rolled back add, want 3", n)
	}
}

// Adds to one counter from many writers at once never conflict: no
// transaction is retried, and the fold keeps the sum.
func TestConcurrentAddsDoNotConflict(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{FoldEvery: 1 << 30})
	const workers, each = 8, 25
	backendtest.Concurrently(t, workers, each, func(w int) error {
		return s.Update(func(btx backend.Tx) error {
			tx := btx.(counters)
			if err := tx.Add(ctbl, []byte("total"), 1); err != nil {
				return err
			}
			return tx.Add(ctbl, []byte(fmt.Sprintf("w%d", w)), 2)
		})
	})
	if retries := s.TxStats().Retries; retries != 0 {
		t.Errorf("%d retries among writers that only add", retries)
	}
	if n := counter(t, s, "total"); n != workers*each {
		t.Fatalf("total = %d, want %d", n, workers*each)
	}
	// A snapshot taken before a fold reads the same sums after it.
	in, out := make(chan struct{}), make(chan struct{})
	errv := make(chan error, 1)
	go func() {
		errv <- s.View(func(btx backend.Tx) error {
			tx := btx.(counters)
			if _, err := tx.Counter(ctbl, []byte("w0")); err != nil { // takes the snapshot
				return err
			}
			close(in)
			<-out
			n, err := tx.Counter(ctbl, []byte("total"))
			if err == nil && n != workers*each {
				err = fmt.Errorf("a snapshot across a fold reads %d", n)
			}
			return err
		})
	}()
	<-in
	folded, err := s.Fold()
	close(out)
	if err != nil {
		t.Fatal(err)
	}
	if folded != workers+1 {
		t.Errorf("fold changed %d counters, want %d", folded, workers+1)
	}
	if err := <-errv; err != nil {
		t.Fatal(err)
	}
	if n := counter(t, s, "total"); n != workers*each {
		t.Fatalf("total = %d after fold, want %d", n, workers*each)
	}
	if n := counter(t, s, "w3"); n != 2*each {
		t.Fatalf("w3 = %d after fold, want %d", n, 2*each)
	}
	if folded, err := s.Fold(); err != nil || folded != 0 {
		t.Fatalf("a second fold: %d, %v; want nothing left", folded, err)
	}
	// Adds after a fold add to the base.
	if err := s.Update(func(btx backend.Tx) error { return btx.(counters).Add(ctbl, []byte("total"), -1) }); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, s, "total"); n != workers*each-1 {
		t.Fatalf("total = %d, want %d", n, workers*each-1)
	}
}

// Setting a counter is adding the difference.
// The fold job runs by itself every FoldEvery adds.
func TestCounterSet(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := open(t, url, pgkv.Options{FoldEvery: 2})
	for i := 0; i < 5; i++ { // enough adds to set the fold job off
		if err := s.Update(func(btx backend.Tx) error { return btx.(counters).Add(ctbl, []byte("c"), 7) }); err != nil {
			t.Fatal(err)
		}
	}
	conn := connect(t, url)
	eventually(t, "the fold job", func() error {
		var base int64
		if err := conn.QueryRow(t.Context(), "SELECT coalesce(sum(n), 0) FROM kv_counter_base").Scan(&base); err != nil {
			return err
		}
		if base < 14 {
			return fmt.Errorf("base holds %d", base)
		}
		return nil
	})
	if n := counter(t, s, "c"); n != 35 {
		t.Fatalf("c = %d, want 35", n)
	}
	if err := s.Update(func(btx backend.Tx) error {
		tx := btx.(counters)
		n, err := tx.Counter(ctbl, []byte("c"))
		if err != nil {
			return err
		}
		return tx.Add(ctbl, []byte("c"), 4-n)
	}); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, s, "c"); n != 4 {
		t.Fatalf("c = %d after setting it to 4", n)
	}
}
