package regtest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kvreg/kvreg/refcount"
)

// versitygwTemp is the directory in each bucket where versitygw keeps its
// own temporary files; its multipart sub-directory holds the parts of
// multipart uploads in progress, which are stored bytes all the same.
const (
	versitygwTemp      = ".sgwtmp"
	versitygwMultipart = ".sgwtmp/multipart"
)

// StoredFiles lists every file the blob store keeps, read from below the
// store rather than through kvreg's driver, so that a test can see bytes
// kvreg lost track of: name (relative to the store) -> size. For the local
// store that is every file under Root but the database; for S3 every
// object and multipart part in the bucket's directory on the server but
// the key of upload tokens.
func (r *Registry) StoredFiles() map[string]int64 {
	r.t.Helper()
	// On S3, the key of upload tokens is made once per bucket by the
	// first upload and stays: it holds no blob's bytes.
	dir, skip := r.storeDir(), map[string]bool{refcount.DBFile: true, "keys/uploads": r.Backend.Blob == BlobsS3}
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if r.Backend.Blob == BlobsS3 && e.IsDir() && rel == versitygwTemp {
			// Only its multipart parts are stored bytes.
			return walkInto(filepath.Join(dir, versitygwMultipart), dir, out)
		}
		if e.IsDir() || skip[rel] || !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		out[rel] = info.Size()
		return nil
	})
	if err != nil {
		r.t.Fatalf("regtest: walk the blob store at %s: %v", dir, err)
	}
	return out
}

func walkInto(dir, base string, out map[string]int64) error {
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fs.SkipDir
}

// ReadStored reads a file StoredFiles listed.
func (r *Registry) ReadStored(name string) []byte {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.storeDir(), filepath.FromSlash(name)))
	if err != nil {
		r.t.Fatalf("regtest: read the blob store: %v", err)
	}
	return b
}

// storeDir is the directory the blob store's bytes are in: Root, or the
// bucket's directory on the S3 server.
func (r *Registry) storeDir() string {
	if r.Backend.Blob == BlobsS3 {
		return filepath.Join(r.S3.Dir, r.Bucket)
	}
	return r.Root
}

// StoredBytes is the sum of StoredFiles' sizes.
func (r *Registry) StoredBytes() int64 {
	r.t.Helper()
	var n int64
	for _, size := range r.StoredFiles() {
		n += size
	}
	return n
}
