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
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/kv"
)

const v1Store = "testdata/v1store"

// dbFile is the database's name in a data directory.
const dbFile = "kvreg.db"

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

// A version 1 store opens and upgrades to version 2 with every record,
// index, count and lease it held. (That the registry then checks clean,
// serves and takes writes on it is refcount's upgrade test.)
func TestUpgradeFromVersion1(t *testing.T) {
	root := copyStore(t)
	readUpgraded(t, filepath.Join(root, dbFile))
}

// A read-only open of a version 1 store (kvreg fsck without --repair on a
// data directory no new kvreg has served yet) refuses instead of reading
// it as empty, and leaves it as it was.
func TestReadOnlyOpenOfVersion1Refuses(t *testing.T) {
	root := copyStore(t)
	dbPath := filepath.Join(root, dbFile)
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
