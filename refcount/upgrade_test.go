package refcount_test

// A data directory written by kvreg at schema version 1 (the store of
// kv/testdata/v1store, described there) upgrades when the registry opens
// it, checks clean, serves every tag, manifest and blob it held, and takes
// new pushes and deletes; its lease still ends.

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

const v1Store = "../kv/testdata/v1store"

// v1Held is what the version 1 store holds, read through kv after the
// upgrade: repo:tag -> digest, repo -> manifests, repo -> linked blobs, and
// its one lease.
type v1Held struct {
	tags      map[string]string
	manifests map[string][]string
	links     map[string][]string
	lease     kv.Lease
}

func readV1Held(t *testing.T, root string) v1Held {
	t.Helper()
	db, err := kv.Open(filepath.Join(root, refcount.DBFile), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := v1Held{tags: map[string]string{}, manifests: map[string][]string{}, links: map[string][]string{}}
	var leases []kv.Lease
	err = db.View(func(tx *kv.Tx) error {
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		for _, repo := range repos {
			if err := tx.ForEachTag(repo, func(tag, d string) error {
				h.tags[repo+":"+tag] = d
				return nil
			}); err != nil {
				return err
			}
			if err := tx.ForEachManifest(repo, func(d string, _ kv.Manifest) error {
				h.manifests[repo] = append(h.manifests[repo], d)
				return nil
			}); err != nil {
				return err
			}
			if err := tx.ForEachLink(repo, func(d string, _ kv.Link) error {
				h.links[repo] = append(h.links[repo], d)
				return nil
			}); err != nil {
				return err
			}
		}
		return tx.ForEachLease(func(l kv.Lease) error { leases = append(leases, l); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.tags) != 4 || len(h.manifests) != 2 || len(leases) != 1 {
		t.Fatalf("version 1 store after the upgrade: tags %v, manifests %v, leases %v", h.tags, h.manifests, leases)
	}
	h.lease = leases[0]
	return h
}

func TestOpenVersion1Store(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	if err := regtest.CopyDir(v1Store, root); err != nil {
		t.Fatal(err)
	}
	held := readV1Held(t, root)
	// The clock stands before the upload's lease ends, as when the store
	// was written, so that opening it sweeps nothing.
	clock := regtest.NewClock()
	clock.Set(time.Unix(0, held.lease.Expiry).Add(-30 * time.Minute))
	// A version 1 store is a bbolt file, whatever backend the other tests run on.
	reg := regtest.Open(t, regtest.Options{Root: root, Clock: clock, Backend: regtest.Default()})
	reg.MustClean()
	if err := reg.DB().View(func(tx *kv.Tx) error {
		tombs, err := tx.Tombstones()
		if err == nil && len(tombs) != 0 {
			err = fmt.Errorf("tombstones %q left after recovery", tombs)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	for ref, d := range held.tags {
		repo, tag, _ := strings.Cut(ref, ":")
		info, err := reg.GetManifest(repo, tag, true)
		if err != nil {
			t.Fatalf("GET %s: %v", ref, err)
		}
		if string(info.Digest) != d || digest.FromBytes(info.Content).String() != d {
			t.Fatalf("GET %s: digest %s, content hashes to %s, tag says %s", ref, info.Digest, digest.FromBytes(info.Content), d)
		}
	}
	for repo, ds := range held.manifests {
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
	for repo, ds := range held.links {
		for _, d := range ds {
			if err := readBlob(repo, d); err != nil {
				t.Fatalf("blob %s@%s: %v", repo, d, err)
			}
		}
	}
	descs, err := reg.Referrers("team/app", digest.Digest(held.tags["team/app:v1"]), "")
	if err != nil || len(descs) != 1 || descs[0].ArtifactType != "application/vnd.example.signature" {
		t.Fatalf("referrers: %+v, %v", descs, err)
	}
	repos, _, err := reg.Catalog("", -1)
	if err != nil || fmt.Sprint(repos) != "[team/app team/other]" {
		t.Fatalf("catalog %q, %v", repos, err)
	}

	// A push on top of the upgraded store, sharing a version 1 layer, and
	// its deletion.
	shared := append([]string(nil), held.links["team/other"]...)
	sort.Strings(shared)
	layer := []byte("a layer pushed after the upgrade")
	cfg := []byte(`{"architecture":"riscv64","os":"linux"}`)
	for _, b := range [][]byte{layer, cfg} {
		if _, err := reg.PutBlob("team/new", digest.FromBytes(b), bytes.NewReader(b), int64(len(b)), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := reg.Mount("team/new", "team/other", digest.Digest(shared[0])); err != nil || !ok {
		t.Fatalf("mount of a version 1 layer: %v, %v", ok, err)
	}
	sharedSize, err := reg.StatBlob("team/new", digest.Digest(shared[0]), false, "")
	if err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},`+
		`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer), shared[0], sharedSize)
	res, err := reg.PutManifest("team/new", "", []string{"v2"}, "application/vnd.oci.image.manifest.v1+json", []byte(m), "")
	if err != nil {
		t.Fatal(err)
	}
	reg.MustClean()
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
	reg.MustClean()

	// The upload's lease, migrated, still ends: the blob it held goes,
	// bytes included.
	clock.Set(time.Unix(0, held.lease.Expiry).Add(time.Second))
	if _, err := reg.Sweep(100); err != nil {
		t.Fatal(err)
	}
	if f, _, err := reg.OpenBlob(held.lease.Repo, digest.Digest(held.lease.Digest)); err == nil {
		f.Close()
		t.Fatal("the expired upload is still served")
	}
	if ok, err := reg.Blobs().Has(digest.Digest(held.lease.Digest)); err != nil || ok {
		t.Fatalf("the expired upload's bytes: stored %v, %v", ok, err)
	}
}
