package kv_test

// The upgrade of a store written by kvreg at schema version 1. testdata/
// v1store is a data directory (kvreg.db and blobs/) that a version 1
// kvreg serve wrote when these were pushed to it over HTTP: team/app with
// an image under tags v1 and latest, an index (tag multi) over that image
// and an arm64 one pushed by digest, a signature referring to the image,
// and a blob uploaded but never referenced (held by its lease); team/other
// with an image sharing the first one's layer (tag v1), and an image
// pushed and deleted again (its own blobs freed, their tombstones left).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

const v1Store = "testdata/v1store"

// copyStore copies the version 1 data directory to a new temporary one.
func copyStore(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "data")
	err := filepath.WalkDir(v1Store, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(v1Store, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// v1Contents is what the version 1 store holds, read after the upgrade
// through kv alone.
type v1Contents struct {
	tags      map[string]string   // repo:tag -> digest
	manifests map[string][]string // repo -> manifest digests
	links     map[string][]string // repo -> linked blob digests
	lease     kv.Lease
}

func readUpgraded(t *testing.T, dbPath string) v1Contents {
	t.Helper()
	db, err := kv.Open(dbPath, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); err != nil || v != kv.SchemaVersion {
		t.Fatalf("schema version after upgrade: %d, %v", v, err)
	}
	c := v1Contents{tags: map[string]string{}, manifests: map[string][]string{}, links: map[string][]string{}}
	var leases []kv.Lease
	err = db.View(func(tx *kv.Tx) error {
		repos, more, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		if more || fmt.Sprint(repos) != "[team/app team/other]" {
			return fmt.Errorf("repositories %q (more %v)", repos, more)
		}
		for _, repo := range repos {
			tags, _, err := tx.Tags(repo, "", -1)
			if err != nil {
				return err
			}
			for _, tag := range tags {
				d, ok, err := tx.Tag(repo, tag)
				if err != nil || !ok {
					return fmt.Errorf("tag %s:%s: %v %v", repo, tag, ok, err)
				}
				c.tags[repo+":"+tag] = d
				of, err := tx.TagsOf(repo, d)
				if err != nil {
					return err
				}
				if !contains(of, tag) {
					return fmt.Errorf("reverse index of %s:%s lists %q", repo, tag, of)
				}
			}
			if err := tx.ForEachManifest(repo, func(d string, _ kv.Manifest) error {
				c.manifests[repo] = append(c.manifests[repo], d)
				return nil
			}); err != nil {
				return err
			}
			if err := tx.ForEachLink(repo, func(d string, _ kv.Link) error {
				c.links[repo] = append(c.links[repo], d)
				return nil
			}); err != nil {
				return err
			}
		}
		refs, err := tx.Referrers("team/app", c.tags["team/app:v1"])
		if err != nil {
			return err
		}
		if len(refs) != 1 || !refs[0].Counted {
			return fmt.Errorf("referrers of team/app:v1: %+v", refs)
		}
		counters, err := tx.Counters()
		if err != nil {
			return err
		}
		// As version 1's kvreg stats reported them for this store.
		want := kv.Counters{Repos: 2, Tags: 4, Manifests: 5, ManifestBytes: 2321, Blobs: 9, BlobBytes: 4091, Links: 10,
			SharedBytes: 3900, LogicalBytes: 7965, UnreferencedBlobs: 1, UnreferencedBytes: 26, Leases: 1}
		if counters != want {
			return fmt.Errorf("counters %+v, want %+v", counters, want)
		}
		for _, repo := range repos {
			st, ok, err := tx.RepoStats(repo)
			if err != nil || !ok || st.Manifests != int64(len(c.manifests[repo])) || st.Links != int64(len(c.links[repo])) {
				return fmt.Errorf("stats of %s: %+v %v %v", repo, st, ok, err)
			}
		}
		// The deleted image's two blobs: files removed, tombstones left
		// for the next write, which never came.
		if tombs, err := tx.Tombstones(); err != nil || len(tombs) != 2 {
			return fmt.Errorf("tombstones %q, %v", tombs, err)
		}
		return tx.ForEachLease(func(l kv.Lease) error { leases = append(leases, l); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"team/app:v1": true, "team/app:latest": true, "team/app:multi": true, "team/other:v1": true}
	if len(c.tags) != len(want) {
		t.Fatalf("tags %v", c.tags)
	}
	for k := range want {
		if c.tags[k] == "" {
			t.Fatalf("tag %s missing: %v", k, c.tags)
		}
	}
	if c.tags["team/app:v1"] != c.tags["team/app:latest"] {
		t.Fatalf("v1 and latest differ: %v", c.tags)
	}
	if len(c.manifests["team/app"]) != 4 || len(c.manifests["team/other"]) != 1 {
		t.Fatalf("manifests %v", c.manifests)
	}
	if len(leases) != 1 || leases[0].Repo != "team/app" || leases[0].Kind != kv.LeaseLink {
		t.Fatalf("leases %+v", leases)
	}
	c.lease = leases[0]
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A version 1 store opens, upgrades to version 2, checks clean, serves
// every tag, manifest and blob it held, and takes new writes.
func TestUpgradeFromVersion1(t *testing.T) {
	root := copyStore(t)
	c := readUpgraded(t, filepath.Join(root, refcount.DBFile))

	// The registry's clock stands before the upload's lease ends, as when
	// the store was written.
	now := time.Unix(0, c.lease.Expiry).Add(-30 * time.Minute)
	reg, err := refcount.OpenRoot(root, kv.Options{}, refcount.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { reg.Close() }()
	check := func(when string) {
		t.Helper()
		probs, err := reg.Check(true)
		if err != nil {
			t.Fatalf("fsck %s: %v", when, err)
		}
		if len(probs) != 0 {
			t.Fatalf("fsck %s: %v", when, probs)
		}
	}
	check("after the upgrade")
	err = reg.DB().View(func(tx *kv.Tx) error {
		tombs, err := tx.Tombstones()
		if err == nil && len(tombs) != 0 {
			err = fmt.Errorf("tombstones %q left after recovery", tombs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	for ref, d := range c.tags {
		repo, tag, _ := strings.Cut(ref, ":")
		info, err := reg.GetManifest(repo, tag, true)
		if err != nil {
			t.Fatalf("GET %s: %v", ref, err)
		}
		if string(info.Digest) != d || digest.FromBytes(info.Content).String() != d {
			t.Fatalf("GET %s: digest %s, content hashes to %s, tag says %s", ref, info.Digest, digest.FromBytes(info.Content), d)
		}
	}
	for repo, ds := range c.manifests {
		for _, d := range ds {
			info, err := reg.GetManifest(repo, d, true)
			if err != nil || digest.FromBytes(info.Content).String() != d {
				t.Fatalf("GET %s@%s: %v", repo, d, err)
			}
		}
	}
	readBlob := func(repo, d string) error {
		f, size, err := reg.OpenBlob(repo, digest.Digest(d))
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if int64(len(b)) != size || digest.FromBytes(b).String() != d {
			return fmt.Errorf("%d bytes (size %d) hashing to %s", len(b), size, digest.FromBytes(b))
		}
		return nil
	}
	for repo, ds := range c.links {
		for _, d := range ds {
			if err := readBlob(repo, d); err != nil {
				t.Fatalf("blob %s@%s: %v", repo, d, err)
			}
		}
	}
	descs, err := reg.Referrers("team/app", digest.Digest(c.tags["team/app:v1"]), "")
	if err != nil || len(descs) != 1 || descs[0].ArtifactType != "application/vnd.example.signature" {
		t.Fatalf("referrers: %+v, %v", descs, err)
	}
	repos, _, err := reg.Catalog("", -1)
	if err != nil || fmt.Sprint(repos) != "[team/app team/other]" {
		t.Fatalf("catalog %q, %v", repos, err)
	}

	// A push on top of the upgraded store, sharing a version 1 layer, and
	// its deletion.
	shared := c.links["team/other"]
	sort.Strings(shared)
	layer := []byte("a layer pushed after the upgrade")
	cfg := []byte(`{"architecture":"riscv64","os":"linux"}`)
	for _, b := range [][]byte{layer, cfg} {
		if _, err := reg.PutBlob("team/new", digest.FromBytes(b), bytes.NewReader(b), int64(len(b)), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Mount("team/new", "team/other", digest.Digest(shared[0])); err != nil {
		t.Fatal(err)
	}
	size := func(d string) int64 {
		var b kv.Blob
		err := reg.DB().View(func(tx *kv.Tx) error {
			var err error
			var ok bool
			if b, ok, err = tx.Blob(d); err == nil && !ok {
				err = fmt.Errorf("no record of %s", d)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.Size
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},`+
		`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer), shared[0], size(shared[0]))
	res, err := reg.PutManifest("team/new", "", []string{"v2"}, "application/vnd.oci.image.manifest.v1+json", []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	check("after a push")
	if err := readBlob("team/new", shared[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.DeleteManifest("team/new", res.Digest); err != nil {
		t.Fatal(err)
	}
	if f, _, err := reg.OpenBlob("team/new", digest.FromBytes(layer)); err == nil {
		f.Close()
		t.Fatal("the deleted image's own layer is still served")
	}
	if err := readBlob("team/other", shared[0]); err != nil {
		t.Fatalf("the shared version 1 layer after the delete: %v", err)
	}
	check("after a delete")

	// The upload's lease, migrated, still ends: the blob it held goes.
	now = time.Unix(0, c.lease.Expiry).Add(time.Second)
	if _, err := reg.Sweep(100); err != nil {
		t.Fatal(err)
	}
	if f, _, err := reg.OpenBlob(c.lease.Repo, digest.Digest(c.lease.Digest)); err == nil {
		f.Close()
		t.Fatal("the expired upload is still served")
	}
	check("after the lease ended")
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}

	// Upgraded once, it opens read-only too.
	reg, err = refcount.OpenRoot(root, kv.Options{ReadOnly: true}, refcount.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("read-only open after the upgrade: %v", err)
	}
}

// A read-only open of a version 1 store (kvreg fsck without --repair on a
// data directory no new kvreg has served yet) refuses instead of reading
// it as empty, and leaves it as it was.
func TestReadOnlyOpenOfVersion1Refuses(t *testing.T) {
	root := copyStore(t)
	dbPath := filepath.Join(root, refcount.DBFile)
	before, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Open(dbPath, kv.Options{ReadOnly: true}); !errors.Is(err, kv.ErrSchemaTooOld) {
		t.Fatalf("read-only open of version 1: %v", err)
	}
	after, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a read-only open changed the version 1 file")
	}
}
