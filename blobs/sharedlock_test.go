package blobs

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Lock takes the shared lock after the in-process one and releases it
// before; a shared lock that fails leaves neither held and says why.
func TestLockTakesTheSharedLock(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("x")
	cause := errors.New("database away")
	var held []digest.Digest
	fail := false
	s.SetSharedLock(func(got digest.Digest) (func(), error) {
		if fail {
			return nil, cause
		}
		held = append(held, got)
		return func() { held = held[:len(held)-1] }, nil
	})
	unlock, err := s.Lock(d)
	if err != nil || len(held) != 1 || held[0] != d {
		t.Fatalf("Lock: %v, shared locks held %v", err, held)
	}
	unlock()
	if len(held) != 0 {
		t.Fatalf("shared locks held after unlock: %v", held)
	}
	fail = true
	if _, err := s.Lock(d); !errors.Is(err, ErrLockUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("Lock with the shared lock failing = %v", err)
	}
	// The in-process lock was let go: taking it again does not block.
	fail = false
	unlock, err = s.Lock(d)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
