// Package driver defines what package blobs needs from the storage under it:
// a content-addressed set of blobs and the bytes of uploads in progress. It
// owns the interface and its sentinel errors, nothing else; the protocols
// (hashing, verification, digest locks, commit and recovery) stay in blobs.
package driver

import (
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

var (
	// ErrNotFound: no blob of that digest, or no upload of that id.
	ErrNotFound = errors.New("blob driver: not found")
	// ErrNoSpace: the storage is full (or a quota is exhausted).
	ErrNoSpace = errors.New("blob driver: no space left")
	// ErrInvalidName: an upload id the driver cannot name storage after.
	ErrInvalidName = errors.New("blob driver: invalid name")
	// ErrUnavailable: the storage could not be reached, or kept failing on
	// its side, after the driver's own retries; nothing says the request
	// would fail again later.
	ErrUnavailable = errors.New("blob driver: storage unavailable")
)

// Driver stores blobs by digest and the bytes of uploads by id. Digests
// passed in have passed Valid; upload ids are chosen by the caller.
//
// The caller serialises what touches one digest (Promote, Unpromote and
// Remove of it) and what touches one upload; a driver need not.
type Driver interface {
	// Stat returns a blob's size, or ErrNotFound.
	Stat(d digest.Digest) (int64, error)
	// Open opens a blob for reading, or returns ErrNotFound. A blob removed
	// while open stays readable through the reader already returned.
	Open(d digest.Digest) (io.ReadSeekCloser, error)
	// Remove deletes a blob. A missing blob is success.
	Remove(d digest.Digest) error
	// Walk calls fn for every object stored as a blob. An object whose name
	// is not a valid digest comes with d == "" and the driver's name for it;
	// a blob with its digest and where the driver keeps its bytes (for a
	// LocatingPromoter, the location it names).
	Walk(fn func(d digest.Digest, name string, size int64) error) error

	// CreateUpload makes the (empty) storage of a new upload, remembering
	// the repository it belongs to.
	CreateUpload(id, repo string) error
	// Append writes r's bytes at the end of an upload that holds size bytes
	// and returns how many it wrote. An error reading r fails the append
	// with that error (wrapped). After an error the upload may hold part of
	// them: the caller calls Truncate.
	Append(id string, size int64, r io.Reader) (int64, error)
	// Truncate cuts an upload back to size bytes, undoing a failed Append.
	Truncate(id string, size int64) error
	// ReadUpload reads an upload's bytes from the start.
	ReadUpload(id string) (io.ReadCloser, error)
	// Upload describes an upload, or returns ErrNotFound.
	Upload(id string) (UploadInfo, error)
	// Uploads lists the ids of the uploads stored, including any the driver
	// finds that the caller did not create.
	Uploads() ([]string, error)
	// RemoveUpload deletes an upload and everything stored for it. A
	// missing upload is success.
	RemoveUpload(id string) error

	// Seal makes an upload's bytes durable; no Append follows.
	Seal(id string) error
	// Promote makes a sealed, verified upload the blob of d, durably,
	// unless a blob of d exists already (created is false and nothing
	// changes). An upload that created the blob stays marked as promoting
	// to d (see UploadInfo.Promoting) until it is removed, so that after a
	// crash the caller can tell whether its record was written and
	// Unpromote.
	Promote(id string, d digest.Digest) (created bool, err error)
	// Unpromote removes the blob of d if, and only if, it is the one upload
	// id's Promote created.
	Unpromote(id string, d digest.Digest) error
}

// UploadInfo is what a driver knows of an upload.
type UploadInfo struct {
	Repo      string
	Size      int64
	Modified  time.Time     // when bytes were last written
	Promoting digest.Digest // set once Promote may have created the blob
}

// Syncer is a driver whose removals become durable only when synced.
type Syncer interface {
	// Sync makes the removals and promotions before it durable.
	Sync() error
}

// Valid reports whether s is a digest drivers accept: sha256 or sha512,
// lowercase hex of the right length. Only such a digest names storage.
func Valid(s string) bool {
	var hex string
	switch {
	case len(s) == 7+64 && s[:7] == "sha256:":
		hex = s[7:]
	case len(s) == 7+128 && s[:7] == "sha512:":
		hex = s[7:]
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
