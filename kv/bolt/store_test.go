package boltkv_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	"github.com/kvreg/kvreg/kv/backend/backendtest"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Store {
		s, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestLockedIsErrLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := boltkv.Open(path, boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := boltkv.Open(path, boltkv.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// filledStore writes a store of n records of 100 bytes, closed, and
// returns its path: a file of many pages to damage.
func filledStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := boltkv.Open(path, boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx backend.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.Put([]byte("t"), []byte{byte(i >> 8), byte(i)}, make([]byte, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDamagedFileIsErrCorrupt(t *testing.T) {
	path := filledStore(t, 2000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096 // the meta pages, 0 and 1, keep their checksums
	for i := 2 * page; i < len(b); i++ {
		b[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := boltkv.Open(path, boltkv.Options{})
	if err == nil {
		defer s.Close()
		err = s.View(func(tx backend.Tx) error {
			return tx.Scan([]byte("t"), nil, func(_, _ []byte) (bool, error) { return true, nil })
		})
	}
	if !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("damaged file: %v, want ErrCorrupt", err)
	}
}

func TestNotARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := boltkv.Open(path, boltkv.Options{}); err == nil {
		t.Fatal("a directory opened as a store")
	}
}

func TestSize(t *testing.T) {
	s, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Size()
	if err != nil || n <= 0 {
		t.Fatalf("Size = %d, %v", n, err)
	}
}

// A file cut short opens as ErrCorrupt, whatever its first pages still hold.
func TestTruncatedFileIsErrCorrupt(t *testing.T) {
	path := filledStore(t, 3000)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := boltkv.Open(path, boltkv.Options{ReadOnly: true}); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("read-only open of a truncated file: %v, want ErrCorrupt", err)
	}
}
