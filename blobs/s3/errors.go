package s3

import (
	"errors"
	"fmt"

	"github.com/kvreg/kvreg/blobs/driver"
)

var (
	// ErrConfig: a configuration the driver cannot use.
	ErrConfig = errors.New("s3 blob store: bad configuration")
	// ErrSize: an Append at a size other than the upload's, or a Truncate
	// to a size the upload cannot be cut back to.
	ErrSize = fmt.Errorf("s3 blob store: %w", driver.ErrSize)
	// ErrSealed: bytes appended to, or cut from, a sealed upload.
	ErrSealed = errors.New("s3 blob store: upload is sealed")
	// ErrUnreadable: an unsealed upload whose full parts S3 cannot give back
	// until the multipart upload completes.
	ErrUnreadable = errors.New("s3 blob store: upload not readable before it is sealed")
	// ErrCorrupt: a state or index object that does not parse.
	ErrCorrupt = errors.New("s3 blob store: corrupt object")
)

// ErrExists: CreateUpload of an id that has an upload.
var ErrExists = errors.New("s3 blob store: upload exists")

// ErrNotSealed: Promote of an upload not sealed.
var ErrNotSealed = errors.New("s3 blob store: upload not sealed")

// httpStatus is the status of the server's answer in err, 0 if it carries
// none.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
