package kv

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

// SchemaVersion is the version this code reads and writes.
const SchemaVersion = 1

// migrations[i] brings a database from version i to version i+1.
var migrations = []func(*bbolt.Tx) error{
	migrateCreateV1Tx,
}

// migrateCreateV1Tx creates the version 1 buckets in an empty database.
func migrateCreateV1Tx(tx *bbolt.Tx) error {
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// schemaVersionTx reads the stored version; 0 for a new, empty file.
func schemaVersionTx(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: schema version", ErrCorrupt)
	}
	return int(binary.BigEndian.Uint32(v)), nil
}

func (db *DB) migrate() error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		v, err := schemaVersionTx(tx)
		if err != nil {
			return err
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: version %d, this kvreg knows %d", ErrSchemaTooNew, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("kv: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		var buf [4]byte
		binary.BigEndian.PutUint32(buf[:], uint32(SchemaVersion))
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
	})
}

// SchemaVersion reports the version stored in the database.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = schemaVersionTx(tx)
		return err
	})
	return v, err
}
