package refcount

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/local"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	root  string
	clock *clock
	reg   *Registry
	rnd   *rand.Rand
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), clock: &clock{t: time.Unix(1_800_000_000, 0)}, rnd: rand.New(rand.NewSource(1))}
	f.open()
	t.Cleanup(func() { f.reg.Close() })
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	reg, err := OpenRoot(f.root, kv.Options{}, Options{Now: f.clock.Now, UploadGrace: time.Hour, PinWindow: time.Minute})
	if err != nil {
		f.t.Fatal(err)
	}
	f.reg = reg
}

// reopen closes and opens the store, as a restart does.
func (f *fixture) reopen() {
	f.t.Helper()
	f.reg.Close()
	f.open()
}

func (f *fixture) blob(repo string, size int) digest.Digest {
	f.t.Helper()
	b := make([]byte, size)
	f.rnd.Read(b)
	d := digest.FromBytes(b)
	if _, err := f.reg.PutBlob(repo, d, bytes.NewReader(b), int64(size), 0); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// image pushes a config and the given layers as an OCI image under tag
// ("" for by digest) and returns the manifest digest.
func (f *fixture) image(repo, tag string, layers ...digest.Digest) digest.Digest {
	f.t.Helper()
	cfg := f.blob(repo, 100)
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":100},"layers":[`, MediaTypeOCIManifest, cfg)
	for i, l := range layers {
		if i > 0 {
			body += ","
		}
		body += fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, l, f.size(l))
	}
	body += "]}"
	return f.manifest(repo, tag, MediaTypeOCIManifest, body)
}

func (f *fixture) manifest(repo, tag, mt, body string) digest.Digest {
	f.t.Helper()
	var tags []string
	by := digest.FromString(body)
	if tag != "" {
		tags = []string{tag}
		by = ""
	}
	res, err := f.reg.PutManifest(repo, by, tags, mt, []byte(body))
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Digest
}

func (f *fixture) size(d digest.Digest) int64 {
	n, err := f.reg.blobs.Stat(d)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// exists reports whether a blob's bytes are stored.
func (f *fixture) exists(d digest.Digest) bool {
	ok, err := f.reg.blobs.Has(d)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

func (f *fixture) check() []Problem {
	f.t.Helper()
	p, err := f.reg.Check(true)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) mustClean() {
	f.t.Helper()
	if p := f.check(); len(p) != 0 {
		f.t.Fatalf("store not clean: %v", p)
	}
}

// kinds returns the problems as "kind object" strings.
func kinds(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Kind+" "+p.Object)
	}
	return out
}

func (f *fixture) update(fn func(tx *kv.Tx) error) {
	f.t.Helper()
	if err := f.reg.db.Update(fn); err != nil {
		f.t.Fatal(err)
	}
}

// dir is the directory driver under the store, for tests that damage it.
func (f *fixture) dir() *local.Driver { return f.reg.blobs.Driver().(*local.Driver) }

func (f *fixture) blobPath(d digest.Digest) string { return f.dir().BlobFile(d) }

// interrupt leaves what a crash between promoting an upload's bytes to a
// blob and recording the blob leaves, and returns the blob's digest.
func (f *fixture) interrupt(repo string, body []byte) digest.Digest {
	f.t.Helper()
	d := digest.FromBytes(body)
	id, err := f.reg.StartUpload(repo)
	if err == nil {
		_, err = f.reg.AppendUpload(repo, id, 0, bytes.NewReader(body), 0)
	}
	if err == nil {
		err = f.dir().Seal(id)
	}
	if err == nil {
		_, err = f.dir().Promote(id, d)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}
