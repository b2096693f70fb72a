package api

import (
	"io"
	"slices"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/opencontainers/go-digest"
)

// openBlobs opens the blob store of a data directory beside the running
// registry, to look at what it stores.
func openBlobs(t testing.TB, root string) *blobs.Store {
	t.Helper()
	bs, err := blobs.Open(root)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	return bs
}

// storedUploads lists the uploads stored under root.
func storedUploads(t testing.TB, root string) []string {
	t.Helper()
	ids, err := openBlobs(t, root).Uploads()
	if err != nil {
		t.Fatalf("uploads: %v", err)
	}
	return ids
}

func uploadStored(t testing.TB, root, id string) bool {
	return slices.Contains(storedUploads(t, root), id)
}

// storedBlob reads the bytes stored for a blob.
func storedBlob(t testing.TB, root string, d digest.Digest) ([]byte, error) {
	f, err := openBlobs(t, root).Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func blobStored(t testing.TB, root string, d digest.Digest) bool {
	t.Helper()
	ok, err := openBlobs(t, root).Has(d)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
