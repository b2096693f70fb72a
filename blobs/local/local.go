// Package local is the blob driver over a directory, and the only code that
// knows its layout:
//
//	<root>/blobs/<algorithm>/<hex>   one file per blob
//	<root>/uploads/<id>/repo         the repository an upload was started in
//	<root>/uploads/<id>/data         the bytes received so far
//	<root>/uploads/<id>/<alg>-<hex>  data, renamed when its commit began
//
// A blob is created by linking a fsynced upload file into place and
// fsyncing the directory, so a name in the blob directory always holds
// complete bytes. Blob readers are *os.File, which keeps the kernel's
// sendfile path when they are copied into a network connection.
package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

var algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// Driver is a blob directory and its uploads under one root.
type Driver struct {
	blobDir   string
	uploadDir string
	syncers   map[digest.Algorithm]*dirSyncer // one per blob directory
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Syncer = (*Driver)(nil)
)

// Open prepares the directories under root, creating root if needed.
func Open(root string) (*Driver, error) {
	d := &Driver{
		blobDir:   filepath.Join(root, "blobs"),
		uploadDir: filepath.Join(root, "uploads"),
		syncers:   map[digest.Algorithm]*dirSyncer{},
	}
	dirs := []string{d.uploadDir}
	for _, a := range algorithms {
		d.syncers[a] = newDirSyncer()
		dirs = append(dirs, filepath.Join(d.blobDir, string(a)))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("blob directory: %w", err)
		}
	}
	return d, nil
}

// BlobFile is the file of blob dg. Beside the driver's own use, it serves
// tools and tests that inspect or damage the directory on purpose.
func (d *Driver) BlobFile(dg digest.Digest) string {
	return filepath.Join(d.blobDir, string(dg.Algorithm()), dg.Encoded())
}

// BlobDir is the directory of blob files (see BlobFile for who may use it).
func (d *Driver) BlobDir() string { return d.blobDir }

// UploadFile is the file of an upload's bytes received so far (see
// BlobFile for who else may use it).
func (d *Driver) UploadFile(id string) string { return filepath.Join(d.uploadDir, id, fileData) }

// Stat returns a blob's size.
func (d *Driver) Stat(dg digest.Digest) (int64, error) {
	fi, err := os.Stat(d.BlobFile(dg))
	if err != nil {
		return 0, mapErr(err, dg)
	}
	return fi.Size(), nil
}

// Open opens a blob's file. The reader is the *os.File itself; an unlinked
// file stays readable through it.
func (d *Driver) Open(dg digest.Digest) (io.ReadSeekCloser, error) {
	f, err := os.Open(d.BlobFile(dg))
	if err != nil {
		return nil, mapErr(err, dg)
	}
	return f, nil
}

// Remove unlinks a blob's file; Sync makes that durable.
func (d *Driver) Remove(dg digest.Digest) error {
	if err := os.Remove(d.BlobFile(dg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Sync fsyncs the blob directories, making removals and links durable.
func (d *Driver) Sync() error {
	for _, a := range algorithms {
		if err := syncDir(filepath.Join(d.blobDir, string(a))); err != nil {
			return err
		}
	}
	return nil
}

// Walk lists every file under the blob directory. A file whose name is not
// a digest is reported by its path.
func (d *Driver) Walk(fn func(dg digest.Digest, name string, size int64) error) error {
	algs, err := os.ReadDir(d.blobDir)
	if err != nil {
		return err
	}
	for _, a := range algs {
		dir := filepath.Join(d.blobDir, a.Name())
		if !a.IsDir() {
			if err := fn("", dir, 0); err != nil {
				return err
			}
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue // removed since the listing
			}
			dg := digest.Digest(a.Name() + ":" + e.Name())
			if !driver.Valid(string(dg)) {
				dg = ""
			}
			if err := fn(dg, filepath.Join(dir, e.Name()), info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// mapErr turns a missing file into driver.ErrNotFound and a full disk into
// driver.ErrNoSpace, keeping the system error in the chain.
func mapErr(err error, what any) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", driver.ErrNotFound, what)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", driver.ErrNoSpace, err)
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// validID refuses an upload id that is not one path element.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%w: upload %q", driver.ErrInvalidName, id)
	}
	return nil
}
