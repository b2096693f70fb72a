package api

import (
	"io"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// serveRegistry opens a registry for the test through regtest (its backend,
// its clock, a deep fsck when the test ends) and serves the API over it on
// a loopback port. The server stops before regtest checks and closes the
// registry: cleanups run last first.
func serveRegistry(t testing.TB, cfg Config) (*regtest.Registry, *httptest.Server) {
	t.Helper()
	reg := regtest.Open(t, regtest.Options{})
	srv := httptest.NewServer(New(reg.Registry, cfg))
	t.Cleanup(srv.Close)
	return reg, srv
}

// storedUploads lists the uploads the registry's store holds.
func storedUploads(t testing.TB, reg *refcount.Registry) []string {
	t.Helper()
	ids, err := reg.Blobs().Uploads()
	if err != nil {
		t.Fatalf("uploads: %v", err)
	}
	return ids
}

func uploadStored(t testing.TB, reg *refcount.Registry, id string) bool {
	t.Helper()
	return slices.Contains(storedUploads(t, reg), id)
}

// storedBlob reads the bytes the registry's store holds for a blob.
func storedBlob(reg *refcount.Registry, d digest.Digest) ([]byte, error) {
	f, err := reg.Blobs().Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func blobStored(t testing.TB, reg *refcount.Registry, d digest.Digest) bool {
	t.Helper()
	ok, err := reg.Blobs().Has(d)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
