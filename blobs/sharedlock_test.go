package blobs

import (
	"errors"
	"fmt"
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

// The in-process lock is one per digest: holding one digest's (as a commit
// does while a multipart upload completes) keeps no other waiting, and
// nothing of a lock stays once no one holds or waits for it.
func TestLockIsPerDigest(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := digest.FromString("a"), digest.FromString("b")
	unlockA, err := s.Lock(a)
	if err != nil {
		t.Fatal(err)
	}
	// Every other digest is free while a is held.
	for i := range 1000 {
		unlock, err := s.Lock(digest.FromString(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	unlockB, err := s.Lock(b)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		unlock, err := s.Lock(a)
		if err == nil {
			unlock()
		}
		close(got)
	}()
	unlockB()
	unlockA()
	<-got
	s.locksMu.Lock()
	n := len(s.locks)
	s.locksMu.Unlock()
	if n != 0 {
		t.Fatalf("%d digests' locks kept after every unlock", n)
	}
}
