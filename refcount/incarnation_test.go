package refcount_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A blob record's incarnation is the registry's clock at the commit that
// made it: a later push of the stored blob (here into another repository)
// keeps it, a push after the blob was deleted makes a new one. StatBlob
// still answers the size alone.
func TestStatBlobRecordIncarnation(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	body := []byte("the bytes of one blob")
	d := digest.FromBytes(body)
	push := func(repo string) {
		t.Helper()
		if _, err := f.PutBlob(repo, d, bytes.NewReader(body), int64(len(body)), 0); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(repo string) refcount.BlobStat {
		t.Helper()
		st, err := f.StatBlobRecord(repo, d)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	first := f.Clock.Now().UnixNano()
	push("a")
	if st := stat("a"); st != (refcount.BlobStat{Size: int64(len(body)), Created: first}) {
		t.Fatalf("after the first push: %+v, want size %d created %d", st, len(body), first)
	}
	f.Clock.Advance(time.Second)
	push("b")
	if st := stat("b"); st.Created != first {
		t.Fatalf("a push of the stored blob changed its incarnation: %d, want %d", st.Created, first)
	}
	if n, err := f.StatBlob("b", d, false, ""); err != nil || n != int64(len(body)) {
		t.Fatalf("StatBlob: %d %v", n, err)
	}
	if _, err := f.StatBlobRecord("c", d); !errors.Is(err, refcount.ErrBlobUnknown) {
		t.Fatalf("a repository that does not link it: %v", err)
	}

	for _, repo := range []string{"a", "b"} {
		if _, err := f.DeleteBlob(repo, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.StatBlobRecord("a", d); !errors.Is(err, refcount.ErrBlobUnknown) {
		t.Fatalf("after the deletes: %v", err)
	}
	f.Clock.Advance(time.Second)
	second := f.Clock.Now().UnixNano()
	push("a")
	if st := stat("a"); st.Created != second || st.Created == first {
		t.Fatalf("a push after the delete: created %d, want %d (not %d)", st.Created, second, first)
	}
}
