package boltkv

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	"go.etcd.io/bbolt"
)

// Nested reads and removes buckets inside buckets, which tables (top-level
// buckets) skip.
func TestNested(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "kv.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucket([]byte("top"))
		if err != nil {
			return err
		}
		if err := top.Put([]byte("a"), []byte("1")); err != nil {
			return err
		}
		in, err := top.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		return in.Put([]byte("x"), []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(path ...string) string {
		t.Helper()
		var p [][]byte
		for _, s := range path {
			p = append(p, []byte(s))
		}
		out := ""
		err := s.View(func(tx backend.Tx) error {
			return tx.(Nested).ScanNested(p, func(k, v []byte, sub bool) (bool, error) {
				out += fmt.Sprintf("%s=%s/%v ", k, v, sub)
				return true, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list("top"); got != "a=1/false b=/true " {
		t.Fatalf("top: %q", got)
	}
	if got := list("top", "b"); got != "x=2/false " {
		t.Fatalf("top/b: %q", got)
	}
	if got := list("top", "missing"); got != "" {
		t.Fatalf("missing: %q", got)
	}
	// As a table, top holds only its value.
	var keys []string
	s.View(func(tx backend.Tx) error {
		return tx.Scan([]byte("top"), nil, func(k, _ []byte) (bool, error) { keys = append(keys, string(k)); return true, nil })
	})
	if fmt.Sprint(keys) != "[a]" {
		t.Fatalf("table scan of top: %q", keys)
	}
	err = s.Update(func(tx backend.Tx) error {
		n := tx.(Nested)
		if err := n.DeleteNested([][]byte{[]byte("top")}, []byte("b")); err != nil {
			return err
		}
		return n.DeleteNested([][]byte{[]byte("top")}, []byte("a"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := list("top"); got != "" {
		t.Fatalf("top after deletes: %q", got)
	}
	if err := s.Update(func(tx backend.Tx) error { return tx.(Nested).DeleteNested(nil, []byte("top")) }); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("top")) != nil {
			t.Fatal("top survived DeleteNested")
		}
		return nil
	})
}
