package blobs

import (
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
)

// uploadsWritten lists the uploads with a time no later than each one's
// last write (driver.WrittenLister), or, from a driver that cannot tell,
// with none (zero): every upload is then read.
func (s *Store) uploadsWritten() ([]driver.UploadWritten, error) {
	if wl, ok := s.drv.(driver.WrittenLister); ok {
		return wl.UploadsWritten()
	}
	ids, err := s.drv.Uploads()
	if err != nil {
		return nil, err
	}
	out := make([]driver.UploadWritten, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	return out, nil
}

// writtenSince reports whether u's record was written at or after before
// for sure: an upload a sweep of what was left alone since before need
// not read. A zero before sweeps every upload.
func writtenSince(u driver.UploadWritten, before time.Time) bool {
	return !before.IsZero() && !u.Written.IsZero() && !u.Written.Before(before)
}
