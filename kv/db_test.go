package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func TestNewStoreIsCurrentVersion(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion()
	if err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion)
	}
	db.Close()
	// Reopening is a no-op migration; read-only too.
	for _, ro := range []bool{false, true} {
		db, err = Open(path, Options{ReadOnly: ro})
		if err != nil {
			t.Fatalf("reopen read-only=%v: %v", ro, err)
		}
		db.Close()
	}
}

// setVersion stores a schema version as another kvreg would have.
func setVersion(t *testing.T, db *DB, v uint32) {
	t.Helper()
	err := db.store.Update(func(tx backend.Tx) error {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v)
		return tx.Put(tableMeta, keySchemaVersion, b[:])
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store that another process moves to a newer schema while this one has
// it open is not ready from then on.
func TestNotReadyOnceTheSchemaMovesOn(t *testing.T) {
	db := openTemp(t)
	if err := db.Ready(); err != nil {
		t.Fatalf("a store just opened: %v", err)
	}
	setVersion(t, db, SchemaVersion+1)
	if err := db.Ready(); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("after a newer kvreg migrated it: %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	setVersion(t, db, SchemaVersion+1)
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("read-only open: got %v, want ErrSchemaTooNew", err)
	}
}

// A read-only open cannot upgrade, so it refuses an older schema rather
// than read it as if it were current.
func TestReadOnlyOpenRefusesOlderSchema(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	setVersion(t, db, 1)
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of version 1: got %v, want ErrSchemaTooOld", err)
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = Open(path, Options{Exclusive: true, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("waited %v for the lock", time.Since(start))
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	for _, b := range []Blob{
		{Size: 1 << 40, Created: 1764460800123456789},
		{Size: 5, Created: 1, Location: "kvreg/data/8341da2fd4f4e9c28f5b1a866a24933a-6d88bf823163c533"},
		{Size: 5, Created: 1, Location: strings.Repeat("l", maxLocation)},
	} {
		if got, err := decodeBlob(encodeBlob(b)); err != nil || got != b {
			t.Fatalf("blob %+v -> %+v, %v", b, got, err)
		}
	}
	if _, err := decodeBlob(encodeBlob(Blob{Location: strings.Repeat("l", maxLocation+1)})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("blob record with a location over %d bytes: %v", maxLocation, err)
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

// A blob record written before Created was kept (its size alone, 8 bytes)
// reads as Created 0 through a transaction, with its size, and counts in
// the totals; a record CreateBlob writes keeps its Created.
func TestOldBlobRecordsDecode(t *testing.T) {
	db := openTemp(t)
	old := make([]byte, 8)
	putU64(old, 4242)
	if err := db.store.Update(func(tx backend.Tx) error {
		return tx.Put(tableBlobs, []byte("sha256:old"), old)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.CreateBlob("sha256:new", Blob{Size: 7, Created: 99}) }); err != nil {
		t.Fatal(err)
	}
	got := map[string]Blob{}
	err := db.View(func(tx *Tx) error {
		for _, d := range []string{"sha256:old", "sha256:new"} {
			b, ok, err := tx.Blob(d)
			if err != nil || !ok {
				return fmt.Errorf("%s: %v %v", d, ok, err)
			}
			got[d] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["sha256:old"] != (Blob{Size: 4242}) || got["sha256:new"] != (Blob{Size: 7, Created: 99}) {
		t.Fatalf("records read as %+v", got)
	}
	var seen []string
	if err := db.View(func(tx *Tx) error {
		return tx.ForEachBlob(func(d string, b Blob) error {
			seen = append(seen, fmt.Sprintf("%s=%d/%d", d, b.Size, b.Created))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, " ") != "sha256:new=7/99 sha256:old=4242/0" {
		t.Fatalf("ForEachBlob: %v", seen)
	}
}

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(target(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestExpiredLeasesInOrder(t *testing.T) {
	db := openTemp(t)
	err := db.Update(func(tx *Tx) error {
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
	err = db.View(func(tx *Tx) error {
		got, err := tx.ExpiredLeases(250, 10)
		if err != nil || len(got) != 2 || got[0].Expiry != 100 || got[1].Expiry != 200 {
			t.Fatalf("expired at 250: %+v, %v", got, err)
		}
		got, err = tx.ExpiredLeases(1000, 1)
		if err != nil || len(got) != 1 || got[0].Expiry != 100 {
			t.Fatalf("max 1: %+v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRepoPrunedWhenEmpty(t *testing.T) {
	db := openTemp(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	exists := func(tx *Tx, repo string) bool {
		t.Helper()
		ok, err := tx.RepoExists(repo)
		must(err)
		return ok
	}
	must(db.Update(func(tx *Tx) error {
		must(tx.CreateBlob("sha256:1", Blob{Size: 10, Created: 1}))
		must(tx.PutLink("a/b", "sha256:1", Link{Refs: 1}))
		must(tx.PutTag("a/b", "v1", "sha256:m", 0))
		must(tx.PutReferrer("a/b", "sha256:m", "sha256:r", false))
		return nil
	}))
	must(db.Update(func(tx *Tx) error {
		if n, err := tx.DeleteLink("a/b", "sha256:1"); err != nil || n {
			t.Fatalf("DeleteLink = %v, %v", n, err)
		}
		if !exists(tx, "a/b") {
			t.Error("repository with a tag left was removed")
		}
		if got, err := tx.TagsOf("a/b", "sha256:m"); err != nil || len(got) != 1 || got[0] != "v1" {
			t.Errorf("TagsOf = %v, %v", got, err)
		}
		must(tx.DeleteTag("a/b", "v1"))
		if exists(tx, "a/b") {
			t.Error("empty repository still listed")
		}
		// Its indexes went with it.
		if refs, err := tx.Referrers("a/b", "sha256:m"); err != nil || len(refs) != 0 {
			t.Errorf("referrers of a pruned repository: %v, %v", refs, err)
		}
		c, err := tx.Counters()
		must(err)
		if c.Repos != 0 || c.Tags != 0 || c.Links != 0 {
			t.Errorf("counters after pruning: %+v", c)
		}
		return nil
	}))
}

// Repositories whose names are prefixes of one another keep their own
// tags, listings and emptiness (keys are <repo> 0x00 <rest>).
func TestRepositoriesSharingAPrefix(t *testing.T) {
	db := openTemp(t)
	repos := []string{"a", "a/b", "a-b", "ab"}
	err := db.Update(func(tx *Tx) error {
		for i, r := range repos {
			for _, tag := range []string{"1", "2"} {
				if err := tx.PutTag(r, tag, "sha256:"+r+tag, 0); err != nil {
					return err
				}
			}
			if i == 0 {
				if err := tx.PutTag(r, "3", "sha256:x", 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		got, more, err := tx.Repos("", -1)
		if err != nil || more || len(got) != 4 || got[0] != "a" || got[1] != "a-b" || got[2] != "a/b" || got[3] != "ab" {
			t.Fatalf("Repos = %q, %v, %v", got, more, err)
		}
		got, more, err = tx.Repos("a-b", 1)
		if err != nil || !more || len(got) != 1 || got[0] != "a/b" {
			t.Fatalf("Repos after a-b = %q, %v, %v", got, more, err)
		}
		tags, more, err := tx.Tags("a", "", 2)
		if err != nil || !more || len(tags) != 2 || tags[0] != "1" || tags[1] != "2" {
			t.Fatalf("Tags(a) = %q, %v, %v", tags, more, err)
		}
		tags, more, err = tx.Tags("a", "2", 5)
		if err != nil || more || len(tags) != 1 || tags[0] != "3" {
			t.Fatalf("Tags(a) after 2 = %q, %v, %v", tags, more, err)
		}
		tags, more, err = tx.Tags("a/b", "", -1)
		if err != nil || more || len(tags) != 2 {
			t.Fatalf("Tags(a/b) = %q, %v, %v", tags, more, err)
		}
		if tags, _, err = tx.Tags("missing", "", -1); err != nil || tags == nil || len(tags) != 0 {
			t.Fatalf("Tags of a missing repository = %#v, %v", tags, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Tombstone generations differ between deletions of the same digest, so
// that clearing an old one never clears a newer one. Each keeps the
// location of the record it replaced.
func TestTombstoneGenerations(t *testing.T) {
	db := openTemp(t)
	var gens []uint64
	locs := []string{"data/first", ""}
	for i := 0; i < 2; i++ {
		err := db.Update(func(tx *Tx) error {
			if err := tx.CreateBlob("sha256:t", Blob{Size: 1, Created: 1, Location: locs[i]}); err != nil {
				return err
			}
			return tx.DeleteBlob("sha256:t")
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(func(tx *Tx) error {
			g, ok, err := tx.Tombstone("sha256:t")
			if err != nil || !ok {
				t.Fatalf("tombstone: %v %v", ok, err)
			}
			if g.Location != locs[i] {
				t.Fatalf("deletion %d: tombstone location %q, want %q", i+1, g.Location, locs[i])
			}
			gens = append(gens, g.Gen)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if gens[0] == gens[1] {
		t.Fatalf("two deletions share generation %d", gens[0])
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteTombstone("sha256:t", gens[0]) }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if g, ok, err := tx.Tombstone("sha256:t"); err != nil || !ok || g.Gen != gens[1] {
			t.Fatalf("clearing the older generation touched the newer: %+v %v %v", g, ok, err)
		}
		return nil
	})
}

// kvreg processes that start together on one new PostgreSQL database all
// open it (their migrations conflict and are retried, or find the work
// done), and every one sees the current schema version.
func TestConcurrentOpensOfANewPostgresDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	type opened struct {
		db  *DB
		err error
	}
	const n = 4
	out := make(chan opened, n)
	for i := 0; i < n; i++ {
		go func() {
			db, err := Open(url, Options{})
			out <- opened{db, err}
		}()
	}
	for i := 0; i < n; i++ {
		o := <-out
		if o.err != nil {
			t.Fatalf("open %d of %d: %v", i+1, n, o.err)
		}
		defer o.db.Close()
		if v, err := o.db.SchemaVersion(); err != nil || v != SchemaVersion {
			t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
		}
	}
}
