package drivertest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// strays lists a StrayLister's strays by name.
func strays(t *testing.T, sl driver.StrayLister) map[string]driver.Stray {
	t.Helper()
	out := map[string]driver.Stray{}
	if err := sl.Strays(func(s driver.Stray) error { out[s.Name] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// testNoStraysNamed: a driver that lists strays lists nothing that a blob,
// an upload in progress, a sealed upload or one caught while promoting
// names, and refuses to remove what it could not list.
func testNoStraysNamed(t *testing.T, d driver.Driver) {
	sl, ok := d.(driver.StrayLister)
	if !ok {
		return // the capability is optional
	}
	if got := strays(t, sl); len(got) != 0 {
		t.Fatalf("empty store has strays: %v", got)
	}
	promote(t, d, "blob", bytes.Repeat([]byte("b"), 1000))
	if err := d.CreateUpload("open", "repo/open"); err != nil {
		t.Fatal(err)
	}
	for i, chunk := range [][]byte{[]byte("first"), []byte("second")} {
		info, err := d.Upload("open")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Append("open", info.Size, bytes.NewReader(chunk)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	upload(t, d, "sealed", []byte("sealed bytes"))
	upload(t, d, "promoting", []byte("promoting bytes"))
	if _, err := d.Promote("promoting", digest.FromBytes([]byte("promoting bytes"))); err != nil {
		t.Fatal(err)
	}
	if got := strays(t, sl); len(got) != 0 {
		t.Fatalf("named things listed as strays: %v", got)
	}
	if err := sl.RemoveStray("../outside"); !errors.Is(err, driver.ErrInvalidName) {
		t.Fatalf("RemoveStray outside the store: %v, want ErrInvalidName", err)
	}
}
