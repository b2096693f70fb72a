package s3

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// A process remembers where a blob's bytes are, and finds out when
// another process (a replica on the same bucket) removed them or stored
// the digest again from a new upload: Open then reads the index again,
// and answers not found, or the new object's bytes.
func TestLocationsFollowAnotherProcess(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	open := func() *Driver {
		d, err := New(context.Background(), Config{
			Bucket: bucket, Prefix: "kvreg", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := open(), open()
	body := randomBytes(100<<10, 7)
	dg := promoted(t, b, "u1", body)
	if got := readBlob(t, a, dg); !bytes.Equal(got, body) {
		t.Fatal("first read: wrong bytes")
	}
	if _, ok := a.locs.get(dg); !ok {
		t.Fatal("the location of a blob read is not remembered")
	}

	// Removed by b: a's remembered object is gone, and so is the index.
	if err := b.Remove(dg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(dg); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("open after another process removed the blob: %v, want not found", err)
	}

	// Stored again by b from a new upload, while a remembers the first
	// object (put back by hand: a read before the removal would have).
	first, _ := b.readIndex(context.Background(), promoted(t, b, "u2", body))
	if err := b.Remove(dg); err != nil {
		t.Fatal(err)
	}
	a.locs.put(dg, location{ix: first})
	if got := promoted(t, b, "u3", body); got != dg {
		t.Fatal("digest changed")
	}
	if got := readBlob(t, a, dg); !bytes.Equal(got, body) {
		t.Fatal("read after another process stored the digest again: wrong bytes")
	}
	if loc, _ := a.locs.get(dg); loc.ix.Object == first.Object {
		t.Fatalf("a still remembers the removed object %s", first.Object)
	}
}
