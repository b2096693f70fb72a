package local

import (
	"os"

	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.WrittenLister = (*Driver)(nil)

// UploadsWritten lists the upload directory with each upload's data file's
// modification time, what Upload reports as Modified, from one stat per
// upload rather than Upload's reads. An upload whose data file is not
// there (renamed for its commit, or a stray entry) comes with zero, to be
// read.
func (d *Driver) UploadsWritten() ([]driver.UploadWritten, error) {
	ids, err := d.Uploads()
	if err != nil {
		return nil, err
	}
	out := make([]driver.UploadWritten, len(ids))
	for i, id := range ids {
		out[i].ID = id
		if validID(id) != nil {
			continue
		}
		if fi, err := os.Stat(d.uploadPath(id, fileData)); err == nil {
			out[i].Written = fi.ModTime()
		}
	}
	return out, nil
}
