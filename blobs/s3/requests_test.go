package s3

import (
	"errors"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// delta is what the driver sent during fn, by operation.
func delta(d *Driver, fn func()) map[string]uint64 {
	before := d.Requests()
	fn()
	out := map[string]uint64{}
	for op, n := range d.Requests() {
		if n != before[op] {
			out[op] = n - before[op]
		}
	}
	return out
}

func TestRequestsCountEachOperation(t *testing.T) {
	d := newDriver(t)
	got := delta(d, func() {
		if _, err := d.Stat(digest.FromString("missing")); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("stat of a missing blob: %v", err)
		}
	})
	if len(got) != 1 || got["GetObject"] != 1 {
		t.Fatalf("a Stat sent %v, want one GetObject (the index)", got)
	}

	dg := promoted(t, d, "u1", []byte("some bytes"))
	// Presigning reads the index (one GetObject) and signs without
	// sending: the signed GET is the client's request, not the driver's.
	got = delta(d, func() {
		if _, err := d.PresignGet(dg, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
	if len(got) != 1 || got["GetObject"] != 1 {
		t.Fatalf("a PresignGet sent %v, want one GetObject (the index) and no signed request", got)
	}
	if len(d.Requests()) < 3 {
		t.Fatalf("an upload, seal and promote counted under fewer than 3 operations: %v", d.Requests())
	}
}
