package driver

import (
	"errors"
	"io"
)

// Checkpointer is a driver that keeps, with an upload's bytes, a small
// opaque checkpoint the caller derives from them (blobs keeps the running
// hash there), so that an upload is resumed after a restart without its
// bytes being read back: a driver that cannot read an upload before Seal
// (S3 gives no part back until the multipart upload completes) must be one.
// A driver that is not leaves the caller to read the bytes again.
type Checkpointer interface {
	// AppendCheckpoint is Append that also stores cp(), called once r is
	// drained and before the Append takes effect, as the checkpoint of the
	// upload's new size. cp may also be called before r is drained: it
	// returns the checkpoint of the upload's bytes up to the last byte
	// read from r. An Append at a size other than the upload's
	// (another process appended since) fails with ErrSize before reading
	// anything of r. Truncate back to the size before an Append
	// restores the checkpoint that size had.
	AppendCheckpoint(id string, size int64, r io.Reader, cp func() []byte) (int64, error)
	// Checkpoint returns the checkpoint stored for the upload's bytes and
	// the size it is of; cp is nil when there is none (an upload that
	// received nothing, or one cut back to where none was stored).
	Checkpoint(id string) (cp []byte, size int64, err error)
}

// ErrSize: an upload holds another number of bytes than the caller said.
var ErrSize = errors.New("size does not match the upload")
