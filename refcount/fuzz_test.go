package refcount

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// FuzzParseManifest: whatever a client PUTs as a manifest, ParseManifest
// never panics; it refuses with ErrManifestInvalid (a 400, never a 500), or
// it accepts a manifest of a type kvreg stores whose every edge (blob, child,
// subject) is a digest ParseDigest accepts, listed once. Parsing is
// deterministic.
func FuzzParseManifest(f *testing.F) {
	cfg := digest.FromString("config")
	l1 := digest.FromString("layer1")
	l2 := digest.FromString("layer2")
	s512 := digest.SHA512.FromString("layer3")
	data := base64.StdEncoding.EncodeToString([]byte("layer1"))
	image := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":6},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":6},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":6}]}`,
		MediaTypeOCIManifest, cfg, l1, s512)
	seeds := []struct{ ct, body string }{
		{MediaTypeOCIManifest, image},
		{"", image},
		{"application/json", image},
		{MediaTypeOCIManifest + "; charset=utf-8", image},
		{MediaTypeDockerList, image},
		{MediaTypeOCIManifest, image + " \n"},
		{MediaTypeOCIManifest, image + "{}"},
		{MediaTypeOCIIndex, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":1,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":%q,"digest":%q,"size":1}]}`, MediaTypeOCIIndex, MediaTypeOCIManifest, l1, MediaTypeOCIManifest, l1)},
		{MediaTypeDockerList, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":7}]}`, MediaTypeDockerList, MediaTypeDockerManifest, l2)},
		{MediaTypeDockerManifest, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":%q,"size":3,"urls":["https://example.invalid/l"]}]}`, MediaTypeDockerManifest, cfg, l2)},
		{MediaTypeOCIManifest, fmt.Sprintf(`{"schemaVersion":2,"artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":6,"data":%q},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":10},"annotations":{"a":"b"}}`, l1, data, MediaTypeOCIManifest, l2)},
		{MediaTypeOCIManifest, fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":-1}}`, cfg)},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"digest":"sha256:../../etc/passwd","size":1}}`},
		{"application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1,"name":"x","tag":"y"}`},
		{MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`},
		{"", `null`},
		{"", `[]`},
		{"bad/;=", `{}`},
		{"", `{"schemaVersion":2,"manifests":null,"config":null}`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	stored := map[string]bool{MediaTypeOCIManifest: true, MediaTypeOCIIndex: true, MediaTypeDockerManifest: true, MediaTypeDockerList: true}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		p, err := ParseManifest(ct, body)
		if err != nil {
			if p != nil {
				t.Fatalf("refused (%v) but returned %+v", err, p)
			}
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("refusal %v does not wrap ErrManifestInvalid (it would be a 500)", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON document: %q", body)
		}
		if !stored[p.MediaType] {
			t.Fatalf("accepted media type %q", p.MediaType)
		}
		edge := func(what, d string) {
			pd, err := blobs.ParseDigest(d)
			if err != nil || string(pd) != d {
				t.Fatalf("accepted a %s digest %q that ParseDigest refuses: %v", what, d, err)
			}
		}
		distinct := func(what string, ds []string) {
			seen := map[string]bool{}
			for _, d := range ds {
				edge(what, d)
				if seen[d] {
					t.Fatalf("%s %s listed twice: it would be counted twice", what, d)
				}
				seen[d] = true
			}
		}
		distinct("blob", p.Blobs)
		distinct("child", p.Children)
		if p.Subject != "" {
			edge("subject", p.Subject)
		}
		if IsIndex(p.MediaType) {
			if len(p.Blobs) != 0 {
				t.Fatalf("an index with blob edges %v", p.Blobs)
			}
		} else {
			if len(p.Children) != 0 {
				t.Fatalf("an image with child edges %v", p.Children)
			}
			if len(p.Blobs) == 0 {
				t.Fatal("an image without its config edge")
			}
			if p.Optional[p.Blobs[0]] {
				t.Fatal("the config is optional")
			}
		}
		for d, opt := range p.Optional {
			if !opt {
				t.Fatalf("Optional[%s] = false is kept", d)
			}
			found := false
			for _, b := range p.Blobs {
				found = found || b == d
			}
			if !found {
				t.Fatalf("optional %s is not one of the blobs", d)
			}
		}
		p2, err := ParseManifest(ct, body)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("second parse differs: %+v, %v; first %+v", p2, err, p)
		}
	})
}

// JSON object names are case-sensitive, and a manifest's edges must be the
// ones every client reads from its bytes. Go's encoding/json matches names
// case-insensitively and lets the last duplicate win, so a manifest with
// "layers" and "Layers" (or two "digest"s in a descriptor) is counted by
// kvreg with one set of blobs while a case-sensitive or first-wins client
// pulls another, which nothing holds: a dangling reference seen from the
// client. Such documents must be refused. Found by FuzzParseManifest
// (its corpus holds accepted manifests spelled "sChemAVersion", "Config").
func TestParseManifestRefusesAmbiguousNames(t *testing.T) {
	cfg := digest.FromString("config")
	l1 := digest.FromString("layer1")
	l2 := digest.FromString("layer2")
	desc := func(d digest.Digest) string {
		return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":6}`, d)
	}
	head := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":6},`, MediaTypeOCIManifest, cfg)
	for name, body := range map[string]string{
		"layers and Layers":     head + `"layers":[` + desc(l1) + `],"Layers":[` + desc(l2) + `]}`,
		"layers twice":          head + `"layers":[` + desc(l1) + `],"layers":[` + desc(l2) + `]}`,
		"digest and Digest":     head + fmt.Sprintf(`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"Digest":%q,"size":6}]}`, l1, l2),
		"config twice":          head + `"config":` + desc(l2) + `,"layers":[]}`,
		"schemaVersion, Schema": fmt.Sprintf(`{"schemaVersion":2,"SchemaVersion":1,"mediaType":%q,"config":%s,"layers":[]}`, MediaTypeOCIManifest, desc(cfg)),
	} {
		p, err := ParseManifest(MediaTypeOCIManifest, []byte(body))
		if err == nil {
			t.Errorf("%s: accepted, with blob edges %v; a first-wins or case-sensitive client reads other ones", name, p.Blobs)
		} else if !errors.Is(err, ErrManifestInvalid) {
			t.Errorf("%s: %v is not ErrManifestInvalid", name, err)
		}
	}
}

// (Not a fuzz target: a crash-safety case found while reading the code for
// the races, kept here because this is the file of refcount tests this work
// may add.)
//
// A blob's tombstone covers a crash between the transaction that deleted its
// record and the removal of its file. The removal of an earlier deletion of
// the same digest must not make a later tombstone be forgotten. Here: a
// deletion commits; the same bytes are uploaded again before its file
// removal runs; a second deletion's transaction is open when that removal
// runs, finds the record still there, keeps the file and lists the digest as
// "cleared"; the second deletion commits its tombstone; the next write
// forgets "cleared" tombstones, the second one with them; the process dies
// before the second deletion removed the file. On restart nothing says the
// file is to go: an orphan file.
func TestLaterTombstoneOutlivesAnEarlierRemoval(t *testing.T) {
	f := newFixture(t)
	const repo = "tomb/x"
	data := []byte("the same bytes, deleted twice")
	d := digest.FromBytes(data)
	put := func() {
		t.Helper()
		if _, err := f.reg.PutBlob(repo, d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
			t.Fatal(err)
		}
	}
	deleteLinkTx := func(tx *kv.Tx, c *change) error {
		l, ok, err := tx.Link(repo, string(d))
		if err != nil || !ok {
			return fmt.Errorf("link of %s: %v, %v", d, ok, err)
		}
		return f.reg.deleteLinkTx(tx, c, repo, string(d), l)
	}
	put()
	c1, err := f.reg.updateTx(deleteLinkTx) // first deletion; its files not yet removed
	if err != nil {
		t.Fatal(err)
	}
	put() // uploaded again: the file is still there, the record comes back
	_, err = f.reg.updateTx(func(tx *kv.Tx, c *change) error {
		// The first deletion's file removal runs while this one is open.
		done := make(chan error, 1)
		go func() { done <- f.reg.finish(c1) }()
		if err := <-done; err != nil {
			return err
		}
		return deleteLinkTx(tx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	var tomb bool
	tombstone := func() bool {
		t.Helper()
		var tomb bool
		err := f.reg.db.View(func(tx *kv.Tx) error {
			var err error
			_, tomb, err = tx.Tombstone(string(d))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tomb
	}
	tomb = tombstone()
	if !tomb {
		t.Fatal("the second deletion left no tombstone")
	}
	f.blob("tomb/other", 10) // any other write
	tomb = tombstone()
	t.Logf("after the next write: tombstone %v, file %v", tomb, f.exists(d))
	f.reopen() // kill -9 before the second deletion removed the file
	if p := f.check(); len(p) != 0 {
		t.Fatalf("after restart: %v", kinds(p))
	}
	if f.exists(d) {
		t.Fatal("the file of a deleted blob survived the restart")
	}
}
