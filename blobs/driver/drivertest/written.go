package drivertest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
)

// A driver that lists its uploads with when each was written lists those
// Uploads lists, each with a time no later than its last write.
func testUploadsWritten(t *testing.T, d driver.Driver) {
	wl, ok := d.(driver.WrittenLister)
	if !ok {
		t.Skip("the driver does not list uploads with when they were written")
	}
	for _, id := range []string{"w1", "w2"} {
		if err := d.CreateUpload(id, "repo"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Append("w2", 0, bytes.NewReader([]byte("written last"))); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	ups, err := wl.UploadsWritten()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := d.Uploads()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, u := range ups {
		listed = append(listed, u.ID)
		if u.Written.After(written) {
			t.Errorf("upload %s written at %v, after the last write ended (%v)", u.ID, u.Written, written)
		}
	}
	slices.Sort(ids)
	slices.Sort(listed)
	if !slices.Equal(listed, ids) || !slices.Equal(ids, []string{"w1", "w2"}) {
		t.Fatalf("listed with times %v, uploads %v", listed, ids)
	}
}
