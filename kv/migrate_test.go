package kv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

// copyV1DB copies the version 1 database of testdata/v1store (see
// upgrade_test.go) to a temporary file.
func copyV1DB(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/v1store/kvreg.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kvreg.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dumpTables lists every key and value of the version 2 tables, and
// whether version 1's repos bucket is still there.
func dumpTables(t *testing.T, path string) (string, bool) {
	t.Helper()
	s, err := boltkv.Open(path, boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	nested := false
	err = s.View(func(tx backend.Tx) error {
		for _, table := range [][]byte{tableMeta, tableBlobs, tableLeases, tableTombstones, tableCounters, tableBlobLinks,
			tableRepos, tableManifests, tableContent, tableTags, tableTagsByDigest, tableLinks, tableReferrers} {
			if err := tx.Scan(table, nil, func(k, v []byte) (bool, error) {
				fmt.Fprintf(&out, "%s %q=%q\n", table, k, v)
				return true, nil
			}); err != nil {
				return err
			}
		}
		return tx.(boltkv.Nested).ScanNested([][]byte{v1BucketRepos}, func(_, _ []byte, _ bool) (bool, error) {
			nested = true
			return false, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Size(); v == 0 {
		t.Fatal("empty store")
	}
	return out.String(), nested
}

// The migration moves a repository in several transactions when it holds
// more than flattenBatch keys, and a crash between them leaves a version
// 1 store that the next open finishes upgrading to the same result as an
// upgrade in one go.
func TestFlattenResumesAfterACrash(t *testing.T) {
	oneGo := copyV1DB(t)
	db, err := Open(oneGo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	want, nested := dumpTables(t, oneGo)
	if nested {
		t.Fatal("version 1's repos bucket survived the upgrade")
	}
	for _, table := range [][]byte{tableRepos, tableManifests, tableContent, tableTags, tableTagsByDigest, tableLinks, tableReferrers} {
		if !bytes.Contains([]byte(want), append(append([]byte{}, table...), ' ')) {
			t.Fatalf("table %s is empty after the upgrade:\n%s", table, want)
		}
	}

	defer func(n int) { flattenBatch = n }(flattenBatch)
	flattenBatch = 3
	crashed := copyV1DB(t)
	s, err := boltkv.Open(crashed, boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		done, err := flattenStepV1(&DB{store: s})
		if err != nil || done {
			t.Fatalf("step %d: done %v, %v", i, done, err)
		}
	}
	s.Close() // the process dies here: version 1, half moved
	if _, err := Open(crashed, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of a half-upgraded store: %v", err)
	}
	db, err = Open(crashed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v", v, err)
	}
	db.Close()
	got, nested := dumpTables(t, crashed)
	if nested {
		t.Fatal("version 1's repos bucket survived the resumed upgrade")
	}
	if got != want {
		t.Fatalf("resumed upgrade differs from one in one go:\n%s\nwant\n%s", got, want)
	}
}
