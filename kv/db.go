package kv

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// DB is the open database.
type DB struct {
	bolt *bbolt.DB
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock.
	LockTimeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
}

// Open opens (creating if needed) the database at path and brings its schema
// up to SchemaVersion.
func Open(path string, opts Options) (db *DB, err error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kv: %s is not a regular file", path)
	}
	// bbolt panics on some damaged files; that is a corrupt database,
	// not a crash.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	// Concurrent writers share a commit (and its fsync) when they arrive
	// within this delay of each other.
	b.MaxBatchDelay = 2 * time.Millisecond
	db = &DB{bolt: b}
	if opts.ReadOnly {
		err = b.View(func(tx *bbolt.Tx) error {
			v, err := schemaVersionTx(tx)
			if err == nil && v > SchemaVersion {
				err = fmt.Errorf("%w: version %d, this kvreg knows %d", ErrSchemaTooNew, v, SchemaVersion)
			}
			return err
		})
	} else {
		err = db.migrate()
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Path is the database file's path.
func (db *DB) Path() string { return db.bolt.Path() }

// Size is the database file's size in bytes.
func (db *DB) Size() int64 {
	fi, err := os.Stat(db.bolt.Path())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Update runs fn in a read-write transaction, committed (and fsynced) when
// fn returns nil. Values read inside fn are copies and outlive it.
func (db *DB) Update(fn func(*Tx) error) (err error) {
	defer db.guard(&err)
	return db.bolt.Update(func(tx *bbolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// guard turns a panic of bbolt on a damaged file into ErrCorrupt; bbolt
// has rolled the transaction back by then.
func (db *DB) guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, db.bolt.Path(), r)
	}
}

// Batch is Update for concurrent callers: calls that arrive together are
// committed in one transaction. fn may be called more than once, so it must
// have no effect outside the transaction that it does not redo.
func (db *DB) Batch(fn func(*Tx) error) (err error) {
	defer db.guard(&err)
	return db.bolt.Batch(func(tx *bbolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) (err error) {
	defer db.guard(&err)
	return db.bolt.View(func(tx *bbolt.Tx) error { return fn(&Tx{tx: tx}) })
}
