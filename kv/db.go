package kv

import (
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
)

// DB is the open database: a backend.Store at SchemaVersion.
type DB struct {
	store backend.Store
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock.
	LockTimeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
}

// Open opens (creating if needed) the bbolt database at path and brings
// its schema up to SchemaVersion.
func Open(path string, opts Options) (*DB, error) {
	s, err := boltkv.Open(path, boltkv.Options{LockTimeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, err
	}
	db, err := OpenStore(s, opts.ReadOnly)
	if err != nil {
		s.Close()
		return nil, err
	}
	return db, nil
}

// OpenStore makes a DB of an open store: it brings the schema up to
// SchemaVersion, or, when readOnly, checks that it is there already. On
// error the store is left open.
func OpenStore(s backend.Store, readOnly bool) (*DB, error) {
	db := &DB{store: s}
	var err error
	if readOnly {
		err = db.checkSchema()
	} else {
		err = db.migrate()
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.store.Close() }

// Path is the database file's path, or "" for a store that is no file.
func (db *DB) Path() string {
	if p, ok := db.store.(interface{ Path() string }); ok {
		return p.Path()
	}
	return ""
}

// Size is the store's size in bytes, or 0 when it cannot tell.
func (db *DB) Size() int64 {
	s, ok := db.store.(backend.Sizer)
	if !ok {
		return 0
	}
	n, err := s.Size()
	if err != nil {
		return 0
	}
	return n
}

// Update runs fn in a read-write transaction, committed when fn returns
// nil. Concurrent calls may share a commit, so fn may run more than once:
// it must have no effect outside the transaction that it does not redo.
// Values read inside fn are copies and outlive it.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.store.Update(func(t backend.Tx) error { return fn(&Tx{b: t}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.store.View(func(t backend.Tx) error { return fn(&Tx{b: t}) })
}
