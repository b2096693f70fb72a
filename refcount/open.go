package refcount

import (
	"fmt"
	"path/filepath"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
)

// DBFile is the database's name inside a data directory.
const DBFile = "kvreg.db"

// OpenRoot opens the data directory root (creating it if needed) with its
// database <root>/kvreg.db, finishes any work a crash interrupted, and
// returns the Registry over it.
func OpenRoot(root string, dbOpts kv.Options, opts Options) (*Registry, error) {
	return OpenRootDB(root, "", dbOpts, opts)
}

// OpenRootDB is OpenRoot with the database named apart: db is what kv.Open
// opens (a bbolt file's path, or a PostgreSQL URL); empty means the bbolt
// file <root>/kvreg.db.
func OpenRootDB(root, db string, dbOpts kv.Options, opts Options) (*Registry, error) {
	// The blob store creates root; the database goes inside it.
	bs, err := blobs.Open(root)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", root, err)
	}
	if db == "" {
		db = filepath.Join(root, DBFile)
	}
	d, err := kv.Open(db, dbOpts)
	if err != nil {
		return nil, err
	}
	r := New(d, bs, opts)
	if !dbOpts.ReadOnly {
		if err := r.Recover(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return r, nil
}

// Close closes the database.
func (r *Registry) Close() error { return r.db.Close() }
