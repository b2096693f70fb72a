package refcount

import (
	"fmt"
	"path/filepath"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
)

// DBFile is the database's name inside a data directory.
const DBFile = "kvreg.db"

// OpenRoot opens the data directory root (creating it if needed), finishes
// any work a crash interrupted, and returns the Registry over it.
func OpenRoot(root string, dbOpts kv.Options, opts Options) (*Registry, error) {
	// The blob store creates root; the database goes inside it.
	bs, err := blobs.Open(root)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", root, err)
	}
	db, err := kv.Open(filepath.Join(root, DBFile), dbOpts)
	if err != nil {
		return nil, err
	}
	r := New(db, bs, opts)
	if !dbOpts.ReadOnly {
		if err := r.Recover(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return r, nil
}

// Close closes the database.
func (r *Registry) Close() error { return r.db.Close() }
