package blobs

import (
	"errors"

	"github.com/kvreg/kvreg/blobs/driver"
)

var (
	// ErrDigestInvalid: a digest is malformed or of an unsupported algorithm.
	ErrDigestInvalid = errors.New("blobs: invalid digest")
	// ErrDigestMismatch: the uploaded bytes do not have the expected digest.
	ErrDigestMismatch = errors.New("blobs: digest does not match content")
	// ErrNotFound: no blob with that digest.
	ErrNotFound = errors.New("blobs: blob not found")
	// ErrUploadUnknown: no upload session with that id in that repository.
	ErrUploadUnknown = errors.New("blobs: upload unknown")
	// ErrRangeInvalid: a chunk does not start where the upload ends.
	ErrRangeInvalid = errors.New("blobs: chunk out of order")
	// ErrTooLarge: the upload would exceed the size limit.
	ErrTooLarge = errors.New("blobs: upload too large")
	// ErrSizeInvalid: the upload's size differs from the size announced.
	ErrSizeInvalid = errors.New("blobs: size does not match")
	// ErrNoSpace: the storage is full; the upload was discarded.
	ErrNoSpace = errors.New("blobs: no space left on the registry's disk")
	// ErrLockUnavailable: the lock on a digest shared with other processes
	// (Store.SetSharedLock) could not be taken; nothing was changed. The
	// cause is wrapped too.
	ErrLockUnavailable = errors.New("blobs: the shared lock on a digest is unavailable")
	// ErrRecordUnknown: a Commit's record failed, and whether the blob is
	// recorded is not settled (the database's commit was cut off, or
	// another record of the blob may still land); the record function
	// wraps it. The upload is left as a process that died right there
	// leaves it, promoting, for FinishInterrupted or Recover (which ask
	// whether the blob was recorded) or the client's retry to settle.
	ErrRecordUnknown = errors.New("blobs: the blob's record may or may not have been stored")
	// ErrUnavailable: the storage could not be reached or kept failing
	// (the driver's own retries spent); the request may succeed later.
	ErrUnavailable = driver.ErrUnavailable
)
