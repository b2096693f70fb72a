package refcount_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/local"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// fixture is a registry under test (opened, clocked and checked at the end
// by regtest) with builders of content: random blobs and images of them.
type fixture struct {
	*regtest.Registry
	t   testing.TB
	rnd *rand.Rand
}

func newFixture(t testing.TB, o regtest.Options) *fixture {
	t.Helper()
	return &fixture{Registry: regtest.Open(t, o), t: t, rnd: rand.New(rand.NewSource(1))}
}

// blob uploads size random bytes to repo and returns their digest.
func (f *fixture) blob(repo string, size int) digest.Digest {
	f.t.Helper()
	b := make([]byte, size)
	f.rnd.Read(b)
	d := digest.FromBytes(b)
	if _, err := f.PutBlob(repo, d, bytes.NewReader(b), int64(size), 0); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// image pushes a new config and the given layers as an OCI image under tag
// ("" for by digest) and returns the manifest digest.
func (f *fixture) image(repo, tag string, layers ...digest.Digest) digest.Digest {
	f.t.Helper()
	bl := []string{string(f.blob(repo, 100))}
	for _, l := range layers {
		bl = append(bl, string(l))
	}
	return f.manifest(repo, tag, refcount.MediaTypeOCIManifest, string(imageBody(bl, f.size)))
}

func (f *fixture) manifest(repo, tag, mt, body string) digest.Digest {
	f.t.Helper()
	var tags []string
	by := digest.FromString(body)
	if tag != "" {
		tags = []string{tag}
		by = ""
	}
	res, err := f.PutManifest(repo, by, tags, mt, []byte(body), "")
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Digest
}

// size is the size of a stored blob's bytes.
func (f *fixture) size(d string) int64 {
	f.t.Helper()
	n, err := f.Blobs().Stat(digest.Digest(d))
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// exists reports whether a blob's bytes are stored.
func (f *fixture) exists(d digest.Digest) bool {
	f.t.Helper()
	ok, err := f.Blobs().Has(d)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

func (f *fixture) update(fn func(tx *kv.Tx) error) {
	f.t.Helper()
	if err := f.DB().Update(fn); err != nil {
		f.t.Fatal(err)
	}
}

// interrupt leaves what a crash between promoting an upload's bytes to a
// blob and recording the blob leaves, and returns the blob's digest.
func (f *fixture) interrupt(repo string, body []byte) digest.Digest {
	f.t.Helper()
	d := digest.FromBytes(body)
	drv := f.Blobs().Driver()
	ref, err := f.StartUpload(repo)
	if err == nil {
		_, err = f.AppendUpload(repo, ref, 0, bytes.NewReader(body), 0)
	}
	// The driver's name for it: its id.
	id := blobs.UploadRef(ref, int64(len(body)))
	if err == nil {
		err = drv.Seal(id)
	}
	if err == nil {
		_, err = drv.Promote(id, d)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// plant stores body as the blob of d through the blob driver alone, as
// damage at rest would: no check that body has digest d, and a record of d
// left as it is but for the location of its bytes, which stays right (the
// bytes changed in place). A blob of d stored already is replaced. It
// works on every driver, so that fsck's findings are tested wherever blobs
// are kept.
func (f *fixture) plant(d digest.Digest, body []byte) {
	f.t.Helper()
	drv := f.Blobs().Driver()
	id := fmt.Sprintf("%032x", f.rnd.Uint64())
	var loc string
	err := drv.Remove(d)
	if err == nil {
		err = drv.CreateUpload(id, "damage")
	}
	if err == nil {
		_, err = drv.Append(id, 0, bytes.NewReader(body))
	}
	if err == nil {
		err = drv.Seal(id)
	}
	if lp, ok := drv.(driver.LocatingPromoter); ok && err == nil {
		_, loc, err = lp.PromoteLocated(id, d)
	} else if err == nil {
		_, err = drv.Promote(id, d)
	}
	if err == nil {
		err = drv.RemoveUpload(id)
	}
	if err != nil {
		f.t.Fatalf("plant %s: %v", d, err)
	}
	f.update(func(tx *kv.Tx) error {
		b, ok, err := tx.Blob(string(d))
		if err != nil || !ok || b.Location == "" {
			return err
		}
		b.Location = loc
		return tx.RewriteBlob(string(d), b)
	})
}

// stored reads a blob's bytes from the store.
func (f *fixture) stored(d digest.Digest) []byte {
	f.t.Helper()
	rc, err := f.Blobs().Open(d)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// localFiles is the blob directory under reg, for what only files on disk
// can take: a blob file damaged by hand, an upload aged by its mtime, a blob
// made to exist without its bytes. A test that uses it pins the local blob
// store (regtest.Options.Blobs).
func localFiles(tb testing.TB, reg *refcount.Registry) *local.Driver {
	tb.Helper()
	drv, ok := reg.Blobs().Driver().(*local.Driver)
	if !ok {
		tb.Fatalf("needs blob files on disk, which the %T driver has not: pin Blobs: regtest.BlobsLocal", reg.Blobs().Driver())
	}
	return drv
}

// kinds returns the problems as "kind object" strings.
func kinds(ps []refcount.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Kind+" "+p.Object)
	}
	return out
}

// imageBody is an OCI image manifest of a config (blobs[0]) and layers,
// each described with the size given by size.
func imageBody(blobs []string, size func(d string) int64) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[`,
		refcount.MediaTypeOCIManifest, blobs[0], size(blobs[0]))
	for j, d := range blobs[1:] {
		if j > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}`, d, size(d))
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}
