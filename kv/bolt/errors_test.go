package boltkv

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// A commit that fails for lack of space or quota says ErrNoSpace, and
// keeps the system's error in the chain; other errors pass as they are.
func TestCommitErrNamesAFullDisk(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := commitErr(&os.PathError{Op: "write", Path: "kv.db", Err: errno})
		if !errors.Is(err, backend.ErrNoSpace) || !errors.Is(err, errno) {
			t.Fatalf("%v: got %v", errno, err)
		}
	}
	other := &os.PathError{Op: "write", Path: "kv.db", Err: syscall.EIO}
	if err := commitErr(other); errors.Is(err, backend.ErrNoSpace) || err != error(other) {
		t.Fatalf("EIO: got %v", err)
	}
	if commitErr(nil) != nil {
		t.Fatal("nil error changed")
	}
}
