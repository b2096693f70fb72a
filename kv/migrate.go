package kv

import (
	"encoding/binary"
	"fmt"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

// SchemaVersion is the version this code reads and writes.
const SchemaVersion = 13

// migrations[i] brings a database from version i to version i+1. Each is
// run by migrate in transactions of its own choosing and must be safe to
// resume after a crash: the version is written only once all have run.
var migrations = []func(db *DB) error{
	migrateCreateV1,
	migrateFlatV2,
	migrateCountersV3,
	migratePinsV4,
	migratePinClientsV5,
	migrateAuthV6,
	migrateCacheV7,
	migrateTagPushedV8,
	migrateEventsV9,
	migrateQuotaV10,
	migrateBlobLocationV11,
	migrateTombstoneLocationV12,
	migrateUploadStatesV13,
}

// migratePinsV4: version 4 adds the tables pins and pinexpiry, which exist
// from their first write, so a version 3 store has nothing to move. The
// version still changes: a kvreg that knows only version 3 would ignore
// the pins that other processes write, so it must refuse the store.
func migratePinsV4(*DB) error { return nil }

// migrateCreateV1: version 1 created its empty top-level buckets here; a
// table now exists from its first write, so there is nothing to do.
func migrateCreateV1(*DB) error { return nil }

// flattenBatch bounds the keys one migration transaction moves, so that a
// large store is upgraded without holding it all in one transaction. (A
// variable so that a test can make every repository take several.)
var flattenBatch = 10_000

// migrateFlatV2 moves version 1's per-repository buckets into the flat
// tables: each key k of repos/<repo>/<table>/ becomes <repo> 0x00 k in
// <table>, and repos/<repo>/stats becomes repositories/<repo>. Only a bbolt
// file can hold version 1, so it reads the nested buckets through the
// bolt transaction's Nested capability; a store without it has nothing
// nested to move. Each transaction moves up to flattenBatch keys and
// deletes them from the old buckets, so a crash leaves a store that the
// next open continues to upgrade.
func migrateFlatV2(db *DB) error {
	for {
		done, err := flattenStepV1(db)
		if err != nil || done {
			return err
		}
	}
}

// flattenStepV1 runs one transaction of migrateFlatV2 and reports whether
// nothing is left to move.
func flattenStepV1(db *DB) (done bool, err error) {
	err = db.store.Update(func(t backend.Tx) error {
		done = false
		n, ok := t.(boltkv.Nested)
		if !ok {
			done = true
			return nil
		}
		var repo []byte
		if err := n.ScanNested([][]byte{v1BucketRepos}, func(k, _ []byte, sub bool) (bool, error) {
			if sub {
				repo = clone(k)
			}
			return repo == nil, nil
		}); err != nil {
			return err
		}
		if repo == nil {
			done = true
			return n.DeleteNested(nil, v1BucketRepos)
		}
		return flattenRepoV1(t, n, repo)
	})
	return done, err
}

// flattenRepoV1 moves up to flattenBatch keys of one version 1 repository
// bucket, and the bucket itself once its tables are empty.
func flattenRepoV1(t backend.Tx, n boltkv.Nested, repo []byte) error {
	budget := flattenBatch
	for _, table := range v1RepoBuckets {
		path := [][]byte{v1BucketRepos, repo, table}
		var keys, vals [][]byte
		if err := n.ScanNested(path, func(k, v []byte, sub bool) (bool, error) {
			if sub {
				return false, fmt.Errorf("%w: bucket %q inside repository %q table %s", ErrCorrupt, k, repo, table)
			}
			keys, vals = append(keys, clone(k)), append(vals, clone(v))
			return len(keys) < budget, nil
		}); err != nil {
			return err
		}
		for i, k := range keys {
			if err := t.Put(table, repoKey(string(repo), string(k)), vals[i]); err != nil {
				return err
			}
			if err := n.DeleteNested(path, k); err != nil {
				return err
			}
		}
		if budget -= len(keys); budget == 0 {
			return nil // the next transaction continues
		}
	}
	var stats []byte
	if err := n.ScanNested([][]byte{v1BucketRepos, repo}, func(k, v []byte, sub bool) (bool, error) {
		if !sub && string(k) == string(v1KeyStats) {
			stats = clone(v)
		}
		return true, nil
	}); err != nil {
		return err
	}
	if _, err := decodeRepoStatsV2(stats); err != nil {
		return fmt.Errorf("repository %q: %w", repo, err)
	}
	if err := t.Put(tableRepos, repo, stats); err != nil {
		return err
	}
	return n.DeleteNested([][]byte{v1BucketRepos}, repo)
}

// schemaVersion reads the stored version; 0 for a new, empty store.
func schemaVersion(t backend.Tx) (int, error) {
	v, err := t.Get(tableMeta, keySchemaVersion)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: schema version", ErrCorrupt)
	}
	return int(binary.BigEndian.Uint32(v)), nil
}

// checkSchema refuses a store this code cannot read as it is: a newer
// one, or an older one (which only a writable open upgrades).
func (db *DB) checkSchema() error {
	v, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	switch {
	case v > SchemaVersion:
		return fmt.Errorf("%w: version %d, this kvreg knows %d", ErrSchemaTooNew, v, SchemaVersion)
	case v > 0 && v < SchemaVersion:
		return fmt.Errorf("%w: version %d, this kvreg reads %d", ErrSchemaTooOld, v, SchemaVersion)
	}
	return nil
}

func (db *DB) migrate() error {
	v, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: version %d, this kvreg knows %d", ErrSchemaTooNew, v, SchemaVersion)
	}
	if v == SchemaVersion {
		return nil
	}
	// A new store (version 0) is empty: it starts at the current version.
	if v > 0 {
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](db); err != nil {
				return fmt.Errorf("kv: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
	}
	return db.store.Update(func(t backend.Tx) error {
		var buf [4]byte
		binary.BigEndian.PutUint32(buf[:], uint32(SchemaVersion))
		return t.Put(tableMeta, keySchemaVersion, buf[:])
	})
}

// Ready reports whether the database answers a read, takes writes and
// has a schema this code knows; the error says why not.
func (db *DB) Ready() error {
	v, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	// Another process sharing the store (a replica of a newer kvreg) may
	// have moved the schema past this code's since it was opened: this one
	// would take records of that schema for damaged ones.
	if v > SchemaVersion {
		return fmt.Errorf("%w: another kvreg moved the database to schema version %d; this one knows %d: stop it", ErrSchemaTooNew, v, SchemaVersion)
	}
	if r, ok := db.store.(backend.Readier); ok {
		return r.Ready()
	}
	return nil
}

// SchemaVersion reports the version stored in the database.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.store.View(func(t backend.Tx) error {
		var err error
		v, err = schemaVersion(t)
		return err
	})
	return v, err
}

// decodeRepoStatsV2 reads a version 2 row of repositories: tags |
// manifests | links | bytes | uniqueBytes, int64 BE each.
func decodeRepoStatsV2(v []byte) (RepoStats, error) {
	if len(v) != 40 {
		return RepoStats{}, fmt.Errorf("%w: repository stats of %d bytes", ErrCorrupt, len(v))
	}
	g := func(i int) int64 { return int64(getU64(v[i*8:])) }
	return RepoStats{Tags: g(0), Manifests: g(1), Links: g(2), Bytes: g(3), UniqueBytes: g(4)}, nil
}

// migrateCountersV3 turns version 2's rows that every push rewrote into
// counters and immutable records: the values of table counters become
// counters (those computed when read are dropped), each row of
// repositories gives its totals to the repository's counters and keeps no
// value, and each blob record keeps only its size. Every step moves a
// value and removes or rewrites it in the same transaction, at most
// flattenBatch at a time, so a crash leaves a store that the next open
// continues to upgrade.
func migrateCountersV3(db *DB) error {
	var c Counters
	for _, k := range append(fieldKeys(c.stored()), v2CrossCounters...) {
		if err := db.store.Update(func(t backend.Tx) error {
			v, err := t.Get(tableCounters, k)
			if err != nil || v == nil {
				return err
			}
			if len(v) == 8 && !containsKey(v2CrossCounters, k) {
				if err := t.Add(tableCounters, k, int64(getU64(v))); err != nil {
					return err
				}
			}
			return t.Delete(tableCounters, k)
		}); err != nil {
			return err
		}
	}
	for _, st := range []struct {
		table []byte
		step  func(t backend.Tx, k, v []byte) (bool, error)
	}{{tableRepos, repoRowV3}, {tableBlobs, blobRecordV3}} {
		table, step := st.table, st.step
		var from []byte // keys before it are done
		for {
			n := 0
			var next []byte
			err := db.store.Update(func(t backend.Tx) error {
				n, next = 0, nil
				var keys, vals [][]byte
				if err := t.Scan(table, from, func(k, v []byte) (bool, error) {
					if old, err := step(nil, k, v); err != nil || !old {
						return err == nil, err
					}
					keys, vals = append(keys, clone(k)), append(vals, clone(v))
					return len(keys) < flattenBatch, nil
				}); err != nil {
					return err
				}
				for i, k := range keys {
					if _, err := step(t, k, vals[i]); err != nil {
						return err
					}
				}
				if n = len(keys); n > 0 {
					next = append(clone(keys[n-1]), 0)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n < flattenBatch {
				break
			}
			from = next
		}
	}
	return nil
}

// repoRowV3 reports whether a row of repositories is of version 2 and,
// given a transaction, moves its totals into counters.
func repoRowV3(t backend.Tx, k, v []byte) (bool, error) {
	if len(v) == 0 {
		return false, nil
	}
	s, err := decodeRepoStatsV2(v)
	if err != nil {
		return false, fmt.Errorf("repository %q: %w", k, err)
	}
	if t == nil {
		return true, nil
	}
	for _, f := range s.stored(string(k)) {
		if err := t.Add(tableRepos, f.key, *f.v); err != nil {
			return false, err
		}
	}
	return true, t.Put(tableRepos, k, []byte{})
}

// blobRecordV3 reports whether a blob record is of version 2 (size | links
// | refs) and, given a transaction, rewrites it as its size alone.
func blobRecordV3(t backend.Tx, k, v []byte) (bool, error) {
	switch len(v) {
	case 8, 16: // size, or size | created
		return false, nil
	case 24:
	default:
		return false, fmt.Errorf("%w: blob record of %d bytes", ErrCorrupt, len(v))
	}
	if t == nil {
		return true, nil
	}
	return true, t.Put(tableBlobs, k, encodeBlob(Blob{Size: int64(getU64(v))}))
}

func fieldKeys(fs []counterField) [][]byte {
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = f.key
	}
	return out
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if string(x) == string(k) {
			return true
		}
	}
	return false
}
