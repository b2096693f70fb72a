package blobs

import (
	"iter"
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

// idleUploads yields, of ups, each upload last changed before before (a
// zero before: every upload) with what the driver reads of it: an upload
// the listing shows written since is not read, one that cannot be read
// (ended meanwhile) is left out.
func (s *Store) idleUploads(ups []driver.UploadWritten, before time.Time) iter.Seq2[string, driver.UploadInfo] {
	return func(yield func(string, driver.UploadInfo) bool) {
		for _, u := range ups {
			if writtenSince(u, before) {
				continue
			}
			info, err := s.drv.Upload(u.ID)
			if err != nil || (!before.IsZero() && !info.Modified.Before(before)) {
				continue
			}
			if !yield(u.ID, info) {
				return
			}
		}
	}
}

// writtenSince reports whether u's record was written at or after before
// for sure: an upload a sweep of what was left alone since before need
// not read. A zero before sweeps every upload.
func writtenSince(u driver.UploadWritten, before time.Time) bool {
	return !before.IsZero() && !u.Written.IsZero() && !u.Written.Before(before)
}
