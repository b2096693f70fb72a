package local

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

const (
	fileRepo = "repo"
	fileData = "data"
)

// copyBufs are the buffers uploads are copied through: large, so that a
// big layer costs few system calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func (d *Driver) uploadPath(id, name string) string { return filepath.Join(d.uploadDir, id, name) }

// marker is the name an upload's data takes when its commit as dg begins.
func marker(dg digest.Digest) string { return string(dg.Algorithm()) + "-" + dg.Encoded() }

// CreateUpload makes uploads/<id>/ with its repo and an empty data file.
func (d *Driver) CreateUpload(id, repo string) error {
	if err := validID(id); err != nil {
		return err
	}
	dir := filepath.Join(d.uploadDir, id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return mapErr(err, id)
	}
	err := os.WriteFile(filepath.Join(dir, fileRepo), []byte(repo), 0o644)
	if err == nil {
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, fileData), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return mapErr(err, id)
	}
	return nil
}

// Append writes r at the end of the data file, asking the kernel to start
// writeback as it goes.
func (d *Driver) Append(id string, size int64, r io.Reader) (int64, error) {
	if err := validID(id); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(d.uploadPath(id, fileData), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, mapErr(err, id)
	}
	defer f.Close()
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(&writebackWriter{f: f, off: size}, r, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return n, mapErr(err, id)
	}
	return n, nil
}

// Truncate cuts the data file back.
func (d *Driver) Truncate(id string, size int64) error {
	if err := validID(id); err != nil {
		return err
	}
	return mapErr(os.Truncate(d.uploadPath(id, fileData), size), id)
}

// ReadUpload opens the data file.
func (d *Driver) ReadUpload(id string) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(d.uploadPath(id, fileData))
	if err != nil {
		return nil, mapErr(err, id)
	}
	return f, nil
}

// Upload reads uploads/<id>/: the repo file and the data file, or the data
// renamed to the digest it is being committed as.
func (d *Driver) Upload(id string) (driver.UploadInfo, error) {
	var info driver.UploadInfo
	if err := validID(id); err != nil {
		return info, err
	}
	ents, err := os.ReadDir(filepath.Join(d.uploadDir, id))
	if err != nil {
		return info, mapErr(err, id)
	}
	repoSeen := false
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == fileRepo:
			r, err := os.ReadFile(d.uploadPath(id, fileRepo))
			if err != nil {
				return info, mapErr(err, id)
			}
			info.Repo, repoSeen = string(r), true
			continue
		case name == fileData:
		default:
			alg, hex, ok := strings.Cut(name, "-")
			if !ok || !driver.Valid(alg+":"+hex) {
				continue
			}
			info.Promoting = digest.Digest(alg + ":" + hex)
		}
		fi, err := e.Info()
		if err != nil {
			return info, mapErr(err, id)
		}
		info.Size, info.Modified = fi.Size(), fi.ModTime()
	}
	if !repoSeen {
		return info, mapErr(fs.ErrNotExist, id)
	}
	return info, nil
}

// Uploads lists the entries of the upload directory.
func (d *Driver) Uploads() ([]string, error) {
	ents, err := os.ReadDir(d.uploadDir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// RemoveUpload removes uploads/<id> (a stray file of that name too).
func (d *Driver) RemoveUpload(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(d.uploadDir, id))
}

// Seal fsyncs the data file.
func (d *Driver) Seal(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	f, err := os.Open(d.uploadPath(id, fileData))
	if err != nil {
		return mapErr(err, id)
	}
	defer f.Close()
	return mapErr(f.Sync(), id)
}

// Promote renames the data file to its digest (the trace a crash leaves),
// links it into the blob directory and fsyncs that directory, sharing the
// fsync with concurrent promotions.
func (d *Driver) Promote(id string, dg digest.Digest) (bool, error) {
	if err := validID(id); err != nil {
		return false, err
	}
	final := d.BlobFile(dg)
	if _, err := os.Stat(final); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	marked := d.uploadPath(id, marker(dg))
	if err := os.Rename(d.uploadPath(id, fileData), marked); err != nil {
		return false, mapErr(err, id)
	}
	if err := os.Link(marked, final); err != nil {
		return false, mapErr(err, dg)
	}
	if err := d.syncers[dg.Algorithm()].sync(filepath.Dir(final)); err != nil {
		os.Remove(final)
		return false, mapErr(err, dg)
	}
	return true, nil
}

// Unpromote removes the blob file if it is the same file as the upload's
// marked data, then fsyncs the directory.
func (d *Driver) Unpromote(id string, dg digest.Digest) error {
	if ok, err := d.Promoted(id, dg); err != nil || !ok {
		return err
	}
	if err := os.Remove(d.BlobFile(dg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return d.syncers[dg.Algorithm()].sync(filepath.Dir(d.BlobFile(dg)))
}

// Promoted reports whether the blob file of dg is the same file as upload
// id's marked data (see driver.PromoteTeller).
func (d *Driver) Promoted(id string, dg digest.Digest) (bool, error) {
	if err := validID(id); err != nil {
		return false, err
	}
	m, err := os.Stat(d.uploadPath(id, marker(dg)))
	if err != nil {
		return false, nil // never promoted: nothing of it in the blob directory
	}
	final, err := os.Stat(d.BlobFile(dg))
	return err == nil && os.SameFile(m, final), nil
}
