package kv

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestMigrateCreatesV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion()
	if err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion)
	}
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		for _, b := range topBuckets {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Reopening is a no-op migration.
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *bbolt.Tx) error {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], SchemaVersion+1)
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, b[:])
	})
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("read-only open: got %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("waited %v for the lock", time.Since(start))
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	b := Blob{Size: 1 << 40, Links: 3}
	if got, err := decodeBlob(encodeBlob(b)); err != nil || got != b {
		t.Fatalf("blob %+v -> %+v, %v", b, got, err)
	}
	l := Link{Refs: 7, Hold: Hold{Lease: 1234567890123, Pending: 2}}
	if got, err := decodeLink(encodeLink(l)); err != nil || got != l {
		t.Fatalf("link %+v -> %+v, %v", l, got, err)
	}
	m := Manifest{Refs: 2, Hold: Hold{Lease: 99, Pending: 3}, MediaType: "x", Size: 10, Blobs: []string{"a", "b"}, Children: []string{"c"}, Subject: "s"}
	v, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeManifest(v)
	if err != nil || got.Refs != 2 || got.Lease != 99 || got.Pending != 3 || got.Subject != "s" || len(got.Blobs) != 2 || got.Children[0] != "c" {
		t.Fatalf("manifest %+v -> %+v, %v", m, got, err)
	}
	if _, err := decodeBlob([]byte{1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short blob record: %v", err)
	}
	lk := Lease{Expiry: 42, Kind: LeaseLink, Repo: "a/b", Digest: "sha256:00"}
	if got, err := parseLeaseKey(leaseKey(lk)); err != nil || got != lk {
		t.Fatalf("lease %+v -> %+v, %v", lk, got, err)
	}
}

func TestExpiredLeasesInOrder(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "k.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *Tx) error {
		for _, e := range []int64{300, 100, 200, 1 << 40} {
			if err := tx.PutLease(Lease{Expiry: e, Kind: LeaseManifest, Repo: "r", Digest: "d"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		got, err := tx.ExpiredLeases(250, 10)
		if err != nil || len(got) != 2 || got[0].Expiry != 100 || got[1].Expiry != 200 {
			t.Fatalf("expired at 250: %+v, %v", got, err)
		}
		got, _ = tx.ExpiredLeases(1000, 1)
		if len(got) != 1 || got[0].Expiry != 100 {
			t.Fatalf("max 1: %+v", got)
		}
		return nil
	})
}

func TestRepoPrunedWhenEmpty(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "k.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Update(func(tx *Tx) error {
		must(tx.CreateBlob("sha256:1", 10))
		must(tx.PutLink("a/b", "sha256:1", Link{Refs: 1}))
		must(tx.PutTag("a/b", "v1", "sha256:m"))
		return nil
	}))
	must(db.Update(func(tx *Tx) error {
		if n, err := tx.DeleteLink("a/b", "sha256:1"); err != nil || n != 0 {
			t.Fatalf("DeleteLink = %d, %v", n, err)
		}
		if !tx.RepoExists("a/b") {
			t.Error("repository with a tag left was removed")
		}
		if got := tx.TagsOf("a/b", "sha256:m"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("TagsOf = %v", got)
		}
		must(tx.DeleteTag("a/b", "v1"))
		if tx.RepoExists("a/b") {
			t.Error("empty repository still listed")
		}
		return nil
	}))
}
