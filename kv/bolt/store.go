// Package boltkv is the bbolt implementation of backend.Store: one file,
// one top-level bucket per table. It is the only package that imports
// bbolt. It owns the file's opening guards (a non-regular file refused, a
// held lock reported as backend.ErrLocked, a damaged file reported as
// backend.ErrCorrupt instead of a panic) and the choice between a lone
// Update and a shared Batch; it knows no table, key or record of kvreg.
package boltkv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock
	// (2 s when zero).
	LockTimeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
}

// Store is an open bbolt file.
type Store struct {
	db      *bbolt.DB
	writers atomic.Int32 // Update calls in flight
}

var _ backend.Store = (*Store)(nil)
var _ backend.Sizer = (*Store)(nil)
var _ backend.Serial = (*Store)(nil)

// Open opens (creating if needed) the bbolt file at path.
func Open(path string, opts Options) (s *Store, err error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	// A writer makes the file's directory if missing (a data directory
	// whose blobs live elsewhere, say).
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("boltkv: %w", err)
		}
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("boltkv: %s is not a regular file", path)
	}
	// bbolt panics on some damaged files; that is a corrupt store, not a
	// crash.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: %s: %v", backend.ErrCorrupt, path, r)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		switch {
		case errors.Is(err, bberrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s", backend.ErrLocked, path)
		case errors.Is(err, bberrors.ErrInvalid), errors.Is(err, bberrors.ErrChecksum), errors.Is(err, bberrors.ErrVersionMismatch):
			return nil, fmt.Errorf("%w: %s: %v", backend.ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("boltkv: open %s: %w", path, err)
	}
	// Concurrent writers share a commit (and its fsync) when they arrive
	// within this delay of each other.
	db.MaxBatchDelay = 2 * time.Millisecond
	s = &Store{db: db}
	if err := s.checkLength(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkLength refuses a file shorter than the pages its meta page counts:
// a truncated file, which bbolt itself opens (it would fault or read
// zeros later, on whichever page is missing).
func (s *Store) checkLength() error {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return err
	}
	var want int64
	err = s.View(func(t backend.Tx) error { want = t.(*tx).tx.Size(); return nil })
	if err != nil {
		return err
	}
	if fi.Size() < want {
		return fmt.Errorf("%w: %s: %d bytes, its pages need %d (truncated)", backend.ErrCorrupt, s.db.Path(), fi.Size(), want)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Size is the size of the data in bytes (the file's, even once unlinked).
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.View(func(t backend.Tx) error { n = t.(*tx).tx.Size(); return nil })
	return n, err
}

// Update runs fn in a read-write transaction. A writer alone commits at
// once; writers that overlap share a commit through bbolt's Batch (which
// waits MaxBatchDelay for company, a wait a lone writer would only pay),
// so fn may run more than once.
func (s *Store) Update(fn func(backend.Tx) error) (err error) {
	defer s.guard(&err)
	commit := s.db.Update
	if s.writers.Add(1) > 1 {
		commit = s.db.Batch
	}
	defer s.writers.Add(-1)
	return commitErr(commit(func(t *bbolt.Tx) error { return fn(&tx{tx: t}) }))
}

// SerialWrites marks bbolt's writers as one at a time (backend.Serial).
func (s *Store) SerialWrites() {}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(backend.Tx) error) (err error) {
	defer s.guard(&err)
	return s.db.View(func(t *bbolt.Tx) error { return fn(&tx{tx: t}) })
}

// guard turns a panic of bbolt on a damaged file into ErrCorrupt; bbolt
// has rolled the transaction back by then.
func (s *Store) guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s: %v", backend.ErrCorrupt, s.db.Path(), r)
	}
}

// commitErr names a full disk or quota as backend.ErrNoSpace (keeping the
// original error in the chain).
func commitErr(err error) error {
	if err == nil || errors.Is(err, backend.ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
	}
	return err
}
