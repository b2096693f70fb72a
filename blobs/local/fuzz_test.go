package local

import (
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// FuzzBlobFile: a digest drivers accept names exactly one file directly
// under its algorithm's directory.
func FuzzBlobFile(f *testing.F) {
	for _, s := range []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
		"sha256:../../../../etc/passwd",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/..",
	} {
		f.Add(s)
	}
	d := &Driver{blobDir: "/data/blobs", uploadDir: "/data/uploads"}
	f.Fuzz(func(t *testing.T, s string) {
		if !driver.Valid(s) {
			return
		}
		dg := digest.Digest(s)
		p := d.BlobFile(dg)
		if filepath.Dir(p) != filepath.Join(d.blobDir, string(dg.Algorithm())) || filepath.Base(p) != dg.Encoded() || filepath.Clean(p) != p {
			t.Fatalf("digest %q maps to path %q", s, p)
		}
	})
}
