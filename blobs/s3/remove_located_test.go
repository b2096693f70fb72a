package s3

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// locatedBlob stores b as a blob through upload id, as a commit does, and
// returns its digest and the location PromoteLocated named, with the
// upload's state gone as after the commit.
func locatedBlob(t *testing.T, d *Driver, id string, b []byte) (digest.Digest, string) {
	t.Helper()
	sealedUpload(t, d, id, b)
	dg := digest.FromBytes(b)
	created, loc, err := d.PromoteLocated(id, dg)
	if err != nil || !created || loc == "" {
		t.Fatalf("PromoteLocated: created %v, location %q, %v", created, loc, err)
	}
	if err := d.RemoveUpload(id); err != nil {
		t.Fatal(err)
	}
	return dg, loc
}

// A removal given the location a blob's record kept deletes its index and
// data object without reading anything, leaves the bucket as it was
// before the blob, and, cut short after the index went, finishes with
// the data object when run again (where Remove, finding no index, would
// leave it to Strays).
func TestRemoveLocated(t *testing.T) {
	d := newDriver(t)
	before := bucketKeys(t, d)
	dg, loc := locatedBlob(t, d, "u", randomBytes(10<<10, 11))
	if got := delta(d, func() {
		if err := d.RemoveLocated(dg, loc); err != nil {
			t.Fatal(err)
		}
	}); got["DeleteObject"] != 2 || sum(got) != 2 {
		t.Fatalf("RemoveLocated sent %v, want the two DeleteObjects alone", got)
	}
	if _, err := d.Stat(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat after RemoveLocated: %v", err)
	}
	if after := bucketKeys(t, d); !slices.Equal(after, before) {
		t.Fatalf("bucket after RemoveLocated %q, before the blob %q", after, before)
	}

	dg, loc = locatedBlob(t, d, "v", randomBytes(10<<10, 12))
	if err := d.del(context.Background(), d.indexKey(dg)); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveLocated(dg, loc); err != nil {
		t.Fatal(err)
	}
	if after := bucketKeys(t, d); !slices.Equal(after, before) {
		t.Fatalf("bucket after the interrupted removal was run again %q, want %q", after, before)
	}
}

// A location that is not a data object of the driver (a damaged record:
// here, another blob's index) is not trusted: the index is read, as by
// Remove, and the other blob stays whole.
func TestRemoveLocatedDistrustsAForeignLocation(t *testing.T) {
	d := newDriver(t)
	other, _ := locatedBlob(t, d, "o", randomBytes(10<<10, 13))
	dg, _ := locatedBlob(t, d, "u", randomBytes(10<<10, 14))
	for _, loc := range []string{d.indexKey(other), "elsewhere/" + strings.TrimPrefix(d.indexKey(other), d.prefix)} {
		if got := delta(d, func() {
			if err := d.RemoveLocated(dg, loc); err != nil {
				t.Fatal(err)
			}
		}); got["GetObject"] != 1 {
			t.Fatalf("RemoveLocated at %q sent %v, want the index read", loc, got)
		}
	}
	if _, err := d.Stat(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat of the removed blob: %v", err)
	}
	if _, err := d.Stat(other); err != nil {
		t.Fatalf("the other blob after a removal named its index: %v", err)
	}
}
