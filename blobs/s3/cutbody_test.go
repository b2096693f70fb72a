package s3

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// A request body cut short ends with io.ErrUnexpectedEOF from its reader:
// the Append fails with it and the upload keeps what it held, whether the
// cut falls in the tail or after a full part.
func TestAppendFailsOnACutBody(t *testing.T) {
	d := newDriver(t)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	first := appendAll(t, d, "u", randomBytes(1000, 1))
	for _, n := range []int{500, MinPartSize + 500} {
		cut := io.MultiReader(bytes.NewReader(randomBytes(n, 2)), errReader{io.ErrUnexpectedEOF})
		if _, err := d.Append("u", int64(len(first)), cut); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("append of %d bytes then a cut: %v, want io.ErrUnexpectedEOF", n, err)
		}
		info, err := d.Upload("u")
		if err != nil || info.Size != int64(len(first)) {
			t.Fatalf("after a failed append: size %d (%v), want %d", info.Size, err, len(first))
		}
	}
	if got := readUpload(t, d, "u"); !bytes.Equal(got, first) {
		t.Fatalf("after failed appends the upload reads %d bytes, want the %d before them", len(got), len(first))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
