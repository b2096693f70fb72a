package main

import (
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/local"
	"github.com/opencontainers/go-digest"
)

// openBlobs opens the blob store of a data directory beside the server
// using it, to look at what it stores.
func openBlobs(t *testing.T, root string) *blobs.Store {
	t.Helper()
	bs, err := blobs.Open(root)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	return bs
}

// uploadDirs lists the uploads stored.
func uploadDirs(t *testing.T, root string) []string {
	t.Helper()
	ids, err := openBlobs(t, root).Uploads()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// blobStored reports whether a blob's bytes are stored.
func blobStored(t *testing.T, root string, d digest.Digest) bool {
	t.Helper()
	ok, err := openBlobs(t, root).Has(d)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// openLocal opens the directory driver of a data directory, for tests that
// damage it on purpose.
func openLocal(t *testing.T, root string) *local.Driver {
	t.Helper()
	d, err := local.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
