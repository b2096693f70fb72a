package driver

import "time"

// UploadWritten is an upload as a listing shows it: its id and a time no
// later than the last write of its record.
type UploadWritten struct {
	ID string
	// Written is no later than the last write of the upload's record, on
	// this process's clock; zero when the driver cannot tell.
	Written time.Time
}

// WrittenLister is a driver that can list its uploads with when each was
// last written more cheaply than reading them one by one (Upload), so that
// a sweep that acts only on uploads left alone for a while skips the young
// ones without reading them. A time it reports may be earlier than the
// truth (the sweep then reads an upload it could have skipped), never
// later (which would skip an upload the sweep is due to act on).
type WrittenLister interface {
	// UploadsWritten lists the uploads stored, as Uploads does.
	UploadsWritten() ([]UploadWritten, error)
}
