package kv

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

// fillV3 writes a small store through the typed methods: two repositories
// sharing a blob, one blob referenced twice in one, one held by nothing
// but its link.
func fillV3(t *testing.T, db *DB) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for _, b := range []struct {
			d    string
			size int64
		}{{"sha256:base", 100}, {"sha256:a", 10}, {"sha256:b", 20}, {"sha256:lone", 7}} {
			if err := tx.CreateBlob(b.d, Blob{Size: b.size, Created: 1}); err != nil {
				return err
			}
		}
		for _, l := range []struct {
			repo, d string
			refs    uint64
		}{{"team/a", "sha256:base", 2}, {"team/a", "sha256:a", 1}, {"team/b", "sha256:base", 1}, {"team/b", "sha256:b", 1}, {"team/b", "sha256:lone", 0}} {
			if err := tx.PutLink(l.repo, l.d, Link{Refs: l.refs}); err != nil {
				return err
			}
		}
		for _, m := range []struct{ repo, d, tag string }{{"team/a", "sha256:m1", "v1"}, {"team/a", "sha256:m2", "v2"}, {"team/b", "sha256:m3", "v1"}} {
			if err := tx.PutManifest(m.repo, m.d, Manifest{Size: 50, Refs: 1}, []byte(strings.Repeat("x", 50))); err != nil {
				return err
			}
			if err := tx.PutTag(m.repo, m.tag, m.d, 0); err != nil {
				return err
			}
		}
		return tx.PutLease(Lease{Expiry: 5, Kind: LeaseLink, Repo: "team/b", Digest: "sha256:lone"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// toV2 rewrites a version 3 store in version 2's format (as the previous
// release writes it): counters as values of table counters (with the
// three computed ones), the totals of each repository in its row, links
// and references in each blob record.
func toV2(t *testing.T, db *DB) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		c, err := tx.Counters()
		if err != nil {
			return err
		}
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		stats := map[string]RepoStats{}
		for _, r := range repos {
			if stats[r], _, err = tx.RepoStats(r); err != nil {
				return err
			}
		}
		type v2blob struct {
			size  int64
			links uint64
			refs  uint64
		}
		blobs := map[string]v2blob{}
		if err := tx.ForEachBlobUse(func(d string, size int64, u BlobUse) error {
			blobs[d] = v2blob{size, u.Links, u.Refs}
			return nil
		}); err != nil {
			return err
		}
		put := func(table []byte, k string, vals ...int64) error {
			v := make([]byte, 8*len(vals))
			for i, x := range vals {
				putU64(v[i*8:], uint64(x))
			}
			return tx.b.Put(table, []byte(k), v)
		}
		for _, f := range append(c.stored(), counterField{v2CrossCounters[0], &c.SharedBytes},
			counterField{v2CrossCounters[1], &c.UnreferencedBlobs}, counterField{v2CrossCounters[2], &c.UnreferencedBytes}) {
			if err := tx.b.Add(tableCounters, f.key, -mustCounter(tx, tableCounters, f.key)); err != nil {
				return err
			}
			if err := put(tableCounters, string(f.key), *f.v); err != nil {
				return err
			}
		}
		for r, s := range stats {
			for _, f := range s.stored(r) {
				if err := tx.b.Add(tableRepos, f.key, -*f.v); err != nil {
					return err
				}
			}
			if err := put(tableRepos, r, s.Tags, s.Manifests, s.Links, s.Bytes, s.UniqueBytes); err != nil {
				return err
			}
		}
		for d, b := range blobs {
			if err := put(tableBlobs, d, b.size, int64(b.links), int64(b.refs)); err != nil {
				return err
			}
		}
		return tx.b.Put(tableMeta, keySchemaVersion, []byte{0, 0, 0, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustCounter(tx *Tx, table, key []byte) int64 {
	n, err := tx.b.Counter(table, key)
	if err != nil {
		panic(err)
	}
	return n
}

// snapshotV3 describes everything a version 3 store answers: totals, each
// repository's stats, each blob's record and use.
func snapshotV3(t *testing.T, db *DB) string {
	t.Helper()
	var out []string
	err := db.View(func(tx *Tx) error {
		c, err := tx.Counters()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("totals %+v", c))
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		for _, r := range repos {
			s, ok, err := tx.RepoStats(r)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("repo %s %v %+v", r, ok, s))
		}
		return tx.ForEachBlobUse(func(d string, size int64, u BlobUse) error {
			out = append(out, fmt.Sprintf("blob %s %d %+v", d, size, u))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// A version 2 store opens as version 3 with every total, repository stat
// and blob answer unchanged, and none of version 2's values left behind;
// a migration interrupted half way finishes on the next open.
func TestMigrateCountersV3(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kvreg.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fillV3(t, db)
			want := snapshotV3(t, db)
			for _, s := range []string{"SharedBytes:100", "UnreferencedBlobs:1", "UnreferencedBytes:7", "LogicalBytes:330",
				"repo team/a true {Tags:2 Manifests:2 Links:2 Bytes:110 UniqueBytes:10}"} {
				if !strings.Contains(want, s) {
					t.Fatalf("store before the round trip lacks %q:\n%s", s, want)
				}
			}
			toV2(t, db)
			db.Close()
			if crash {
				s, err := boltkv.Open(path, boltkv.Options{})
				if err != nil {
					t.Fatal(err)
				}
				// One row of each kind moved, then the process dies.
				err = s.Update(func(tx backend.Tx) error {
					for _, st := range []struct {
						table, key []byte
						step       func(backend.Tx, []byte, []byte) (bool, error)
					}{{tableRepos, []byte("team/a"), repoRowV3}, {tableBlobs, []byte("sha256:a"), blobRecordV3}} {
						v, err := tx.Get(st.table, st.key)
						if err != nil {
							return err
						}
						if old, err := st.step(tx, st.key, clone(v)); err != nil || !old {
							return fmt.Errorf("%s was no version 2 value: %v", st.key, err)
						}
					}
					return nil
				})
				s.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			db, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
				t.Fatalf("version %d, %v", v, err)
			}
			if got := snapshotV3(t, db); got != want {
				t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
			}
			err = db.View(func(tx *Tx) error {
				return tx.b.Scan(tableCounters, nil, func(k, v []byte) (bool, error) {
					return false, fmt.Errorf("version 2 counter value left: %s=%x", k, v)
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.View(func(tx *Tx) error {
				return tx.b.Scan(tableRepos, nil, func(k, v []byte) (bool, error) {
					if len(v) != 0 {
						return false, fmt.Errorf("repository row %s keeps %d bytes", k, len(v))
					}
					return true, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
