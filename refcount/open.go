package refcount

import (
	"fmt"
	"path/filepath"
	"slices"

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
	return OpenStores(root, db, "", dbOpts, opts)
}

// OpenStores is OpenRootDB with the blob store named apart too: blobStore
// is what blobs.OpenTarget opens (an s3:// URL, or a directory); empty
// means the blob directory under root.
func OpenStores(root, db, blobStore string, dbOpts kv.Options, opts Options) (*Registry, error) {
	// The directory store makes root; with blobs elsewhere, the bbolt
	// backend makes the directory of its file.
	bs, err := blobs.OpenTarget(root, blobStore)
	if err != nil {
		where := "data directory " + root
		if blobStore != "" {
			where = "blob store " + blobStore
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if db == "" {
		db = filepath.Join(root, DBFile)
	}
	d, err := kv.Open(db, dbOpts)
	if err != nil {
		return nil, err
	}
	if err := cachePrefixes(d, dbOpts, &opts); err != nil {
		d.Close()
		return nil, err
	}
	if err := settleQuotas(d, dbOpts, &opts); err != nil {
		d.Close()
		return nil, err
	}
	r := New(d, bs, opts)
	if !dbOpts.ReadOnly {
		if err := r.Recover(); err != nil {
			d.Close()
			return nil, err
		}
		r.recovered.Store(true)
	}
	return r, nil
}

// Close closes the database.
func (r *Registry) Close() error { return r.db.Close() }

// cachePrefixes settles the pull-through cache's prefixes: a server's
// (opts.CachePrefixes not nil, empty without mirrors) are recorded in the
// database; an operator command (nil) takes the recorded ones, so that
// its stats, ls and fsck see cached repositories as the server does.
func cachePrefixes(d *kv.DB, dbOpts kv.Options, opts *Options) error {
	if opts.CachePrefixes == nil {
		return d.View(func(tx *kv.Tx) error {
			ps, err := tx.CachePrefixes()
			opts.CachePrefixes = ps
			return err
		})
	}
	if dbOpts.ReadOnly {
		return nil
	}
	// Read first: replicas starting with the same mirrors write nothing.
	var recorded []string
	err := d.View(func(tx *kv.Tx) error {
		var err error
		recorded, err = tx.CachePrefixes()
		return err
	})
	if err != nil || (recorded != nil && slices.Equal(recorded, opts.CachePrefixes)) {
		return err
	}
	return d.Update(func(tx *kv.Tx) error { return tx.PutCachePrefixes(opts.CachePrefixes) })
}
