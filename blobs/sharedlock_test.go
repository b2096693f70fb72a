package blobs

import (
	"bytes"
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
	var held []string
	fail := false
	s.SetSharedLock(func(got ...string) (func(), error) {
		if fail {
			return nil, cause
		}
		held = append(held, got...)
		return func() { held = held[:len(held)-len(got)] }, nil
	})
	unlock, err := s.Lock(d)
	if err != nil || len(held) != 1 || held[0] != string(d) {
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

// A commit whose digest lock cannot be taken (the database away) leaves
// the upload as it was: the commit sent again succeeds.
func TestCommitWithoutTheLockKeepsTheUpload(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	away := true
	cause := errors.New("database away")
	s.SetSharedLock(func(...string) (func(), error) {
		if away {
			return nil, cause
		}
		return func() {}, nil
	})
	body := []byte("committed once the database is back")
	d := digest.FromBytes(body)
	id, err := s.NewUpload("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("r", id, 0, bytes.NewReader(body), 0); err != nil {
		t.Fatal(err)
	}
	record := func(int64, string, string) error { return nil }
	if _, err := s.Commit("r", id, d, int64(len(body)), record); !errors.Is(err, ErrLockUnavailable) {
		t.Fatalf("commit with the lock away: %v, want ErrLockUnavailable", err)
	}
	if n, err := s.UploadSize("r", id); err != nil || n != int64(len(body)) {
		t.Fatalf("the upload after: %d bytes, %v", n, err)
	}
	away = false
	if n, err := s.Commit("r", id, d, int64(len(body)), record); err != nil || n != int64(len(body)) {
		t.Fatalf("the commit sent again: %d, %v", n, err)
	}
}
