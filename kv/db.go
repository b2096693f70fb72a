package kv

import (
	"strings"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
	pgkv "github.com/kvreg/kvreg/kv/pg"
)

// DB is the open database: a backend.Store at SchemaVersion.
type DB struct {
	store backend.Store
	// quotaNS maps a repository to its quota namespace (see quota.go).
	quotaNS func(repo string) string
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock
	// (bbolt).
	LockTimeout time.Duration
	// ReadOnly opens the file without taking the write lock (bbolt); on
	// PostgreSQL it only checks the schema instead of upgrading it.
	ReadOnly bool
	// Exclusive holds a PostgreSQL database's write lock while open, so
	// that one process writes to it at a time (ErrLocked when another
	// holds it). A bbolt file's writer is always exclusive.
	Exclusive bool
	// Replica holds it shared instead: replicas write side by side, and
	// neither a replica nor an exclusive process opens the database while
	// the other kind holds it (ErrLocked).
	Replica bool
}

// IsURL reports whether target names a PostgreSQL database
// (postgres://... or postgresql://...) rather than a bbolt file.
func IsURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Open opens the database at target, a bbolt file's path (created if
// needed) or a PostgreSQL URL, and brings its schema up to SchemaVersion.
func Open(target string, opts Options) (*DB, error) {
	var s backend.Store
	var err error
	if IsURL(target) {
		s, err = pgkv.Open(target, pgkv.Options{Exclusive: opts.Exclusive, Replica: opts.Replica})
	} else {
		s, err = boltkv.Open(target, boltkv.Options{LockTimeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	}
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

// TxStats are a store's counts of its transactional work (backend's, so
// that kv's callers need not import backend).
type TxStats = backend.TxStats

// TxStats are the store's counts of transactions, round trips and reruns
// since it opened; ok is false for a store that does not count them
// (bbolt: no server, no reruns).
func (db *DB) TxStats() (s TxStats, ok bool) {
	r, ok := db.store.(backend.StatsReporter)
	if !ok {
		return TxStats{}, false
	}
	return r.TxStats(), true
}

// Update runs fn in a read-write transaction, committed when fn returns
// nil. Concurrent calls may share a commit, so fn may run more than once:
// it must have no effect outside the transaction that it does not redo.
// Values read inside fn are copies and outlive it.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.store.Update(func(t backend.Tx) error { return fn(&Tx{b: t, quotaNS: db.quotaNS}) })
}

// View runs fn in a read-only transaction. An fn that begins with a
// Prefetch's Read may run twice (the backend may answer that batch alone,
// outside a transaction, and run fn again in one if it then reads
// anything else): it must set, not accumulate, what it hands out.
func (db *DB) View(fn func(*Tx) error) error {
	return db.store.View(func(t backend.Tx) error { return fn(&Tx{b: t}) })
}

// ConcurrentWrites reports whether write transactions may run side by
// side (PostgreSQL), rather than one at a time (bbolt; see backend.Serial).
func (db *DB) ConcurrentWrites() bool {
	_, serial := db.store.(backend.Serial)
	return !serial
}

// SharesLocks reports whether the store holds locks across the processes
// that share it (PostgreSQL's advisory locks; see Lock).
func (db *DB) SharesLocks() bool {
	_, ok := db.store.(backend.Locker)
	return ok
}

// Lock takes the locks of keys shared by every process on the database,
// all of them, waiting a bounded time for other holders; unlock releases
// them. Locks that could not be taken are an error wrapping
// ErrUnavailable, and none is held. On a store that does not share locks
// (bbolt: one process writes) it holds nothing.
func (db *DB) Lock(keys ...string) (unlock func(), err error) {
	l, ok := db.store.(backend.Locker)
	if !ok {
		return func() {}, nil
	}
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	return l.Lock(bs...)
}
