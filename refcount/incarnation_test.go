package refcount_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A blob record's incarnation is the registry's clock at the commit that
// made it: a later push of the stored blob (here into another repository)
// keeps it, a push after the blob was deleted makes a new one. So with its
// location, on a blob store that names one (S3: the data object): kept by
// the later push, new after the delete. StatBlob still answers the size
// alone.
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

	located := f.Blobs().CanPresign() // the S3 driver names locations, the directory's not
	first := f.Clock.Now().UnixNano()
	push("a")
	st := stat("a")
	if st.Size != int64(len(body)) || st.Created != first || (st.Location != "") != located {
		t.Fatalf("after the first push: %+v, want size %d created %d, a location: %v", st, len(body), first, located)
	}
	firstLoc := st.Location
	f.Clock.Advance(time.Second)
	push("b")
	if st := stat("b"); st.Created != first || st.Location != firstLoc {
		t.Fatalf("a push of the stored blob changed its incarnation or location: %+v, want created %d at %q", st, first, firstLoc)
	}
	if located {
		// The store loses the bytes under the record; a push of them
		// stores them anew, and the record names where.
		if err := f.Blobs().Driver().Remove(d); err != nil {
			t.Fatal(err)
		}
		push("b")
		st := stat("b")
		if st.Created != first || st.Location == "" || st.Location == firstLoc {
			t.Fatalf("a push after the store lost the bytes: %+v, want created %d and a location other than %q", st, first, firstLoc)
		}
		if u, err := f.Blobs().PresignGet(d, st.Created, st.Location, time.Minute); err != nil || !servesBytes(t, u, body) {
			t.Fatalf("the URL of the new location (%v) does not serve the bytes", err)
		}
		firstLoc = st.Location
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
	if st := stat("a"); st.Created != second || st.Created == first || (st.Location != "") != located || (located && st.Location == firstLoc) {
		t.Fatalf("a push after the delete: %+v, want created %d (not %d), a location other than %q: %v", st, second, first, firstLoc, located)
	}
}

// servesBytes reports whether a GET of u answers 200 with want.
func servesBytes(t testing.TB, u string, want []byte) bool {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && bytes.Equal(got, want)
}
