package blobs

import (
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// Strays lists what the driver stores that no blob and no upload names,
// last written before cutoff; younger ones may belong to an operation in
// flight. A driver that cannot list strays has none.
func (s *Store) Strays(before time.Time) ([]driver.Stray, error) {
	sl, ok := s.drv.(driver.StrayLister)
	if !ok {
		return nil, nil
	}
	var out []driver.Stray
	err := sl.Strays(func(st driver.Stray) error {
		if st.Modified.Before(before) {
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// RemoveStray removes one stray Strays listed.
func (s *Store) RemoveStray(name string) error {
	sl, ok := s.drv.(driver.StrayLister)
	if !ok {
		return nil
	}
	return sl.RemoveStray(name)
}

// RemoveStrays removes the strays last written before cutoff and returns
// them. The caller chooses cutoff so that nothing in flight is that old.
func (s *Store) RemoveStrays(before time.Time) ([]driver.Stray, error) {
	strays, err := s.Strays(before)
	if err != nil {
		return nil, err
	}
	for i, st := range strays {
		if err := s.RemoveStray(st.Name); err != nil {
			return strays[:i], err
		}
	}
	return strays, nil
}

// StoredSize returns the size of the bytes stored for a blob, looking at
// the bytes themselves where Stat reads only a record of them (S3's index),
// and where the driver keeps them, as PromoteLocated names them ("" for a
// driver that does not): ErrNotFound when they are missing. It costs more
// than Stat.
func (s *Store) StoredSize(d digest.Digest) (size int64, loc string, err error) {
	if ss, ok := s.drv.(driver.StoredSizer); ok {
		n, loc, err := ss.StoredSize(d)
		return n, loc, notFound(err, d)
	}
	n, err := s.Stat(d)
	return n, "", err
}

// Usage is what the store holds, from the driver where it can tell,
// otherwise from a walk of the blobs and the uploads.
func (s *Store) Usage() (driver.Usage, error) {
	if u, ok := s.drv.(driver.Usager); ok {
		return u.Usage()
	}
	var u driver.Usage
	err := s.drv.Walk(func(_ digest.Digest, _ string, size int64) error {
		u.BlobBytes += size
		u.BlobObjects++
		return nil
	})
	if err != nil {
		return u, err
	}
	ids, err := s.drv.Uploads()
	if err != nil {
		return u, err
	}
	for _, id := range ids {
		if info, err := s.drv.Upload(id); err == nil {
			u.UploadBytes += info.Size
		}
	}
	return u, nil
}
