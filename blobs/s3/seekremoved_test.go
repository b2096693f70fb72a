package s3

import (
	"bytes"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// http.ServeContent seeks to the end and back before it reads: a blob
// removed after Open still reads whole through those seeks, from the
// response Open started.
func TestRemovedBlobReadsAfterSeekToEndAndBack(t *testing.T) {
	d := newDriver(t)
	data := randomBytes(100<<10, 3)
	dg := digest.FromBytes(data)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "u", data)
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Promote("u", dg); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Seek(0, io.SeekEnd); err != nil || n != int64(len(data)) {
		t.Fatalf("seek to the end: %d, %v", n, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(dg); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes after the removal: %v", len(got), len(data), err)
	}
}
