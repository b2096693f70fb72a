package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.StrayLister = (*Driver)(nil)

// Strays lists the entries of the upload directory that are not uploads:
// a directory without its repo file (CreateUpload interrupted between
// making the directory and writing it), or a file. Nothing else expires
// them: Upload does not find them, so they are never an expired upload.
// Blob directory orphans are Walk's.
func (d *Driver) Strays(fn func(driver.Stray) error) error {
	ents, err := os.ReadDir(d.uploadDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		s := driver.Stray{Name: e.Name(), Kind: driver.StrayObject, Modified: info.ModTime()}
		if e.IsDir() {
			if _, err := os.Stat(d.uploadPath(e.Name(), fileRepo)); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			files, _ := os.ReadDir(filepath.Join(d.uploadDir, e.Name()))
			for _, f := range files {
				if fi, err := f.Info(); err == nil {
					s.Size += fi.Size()
					if fi.ModTime().After(s.Modified) {
						s.Modified = fi.ModTime()
					}
				}
			}
		} else {
			s.Size = info.Size()
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// RemoveStray removes an entry of the upload directory.
func (d *Driver) RemoveStray(name string) error { return d.RemoveUpload(name) }
