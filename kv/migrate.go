package kv

import (
	"encoding/binary"
	"fmt"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

// SchemaVersion is the version this code reads and writes.
const SchemaVersion = 2

// migrations[i] brings a database from version i to version i+1. Each is
// run by migrate in transactions of its own choosing and must be safe to
// resume after a crash: the version is written only once all have run.
var migrations = []func(db *DB) error{
	migrateCreateV1,
	migrateFlatV2,
}

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
	if _, err := decodeRepoStats(stats); err != nil {
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
