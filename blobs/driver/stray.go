package driver

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Kinds of Stray.
const (
	StrayObject    = "object"    // a stored object or file
	StrayMultipart = "multipart" // an S3 multipart upload in progress
)

// Stray is something a driver stores that no blob and no upload names: what
// a process that died mid-operation leaves. It may also be the work of an
// operation still in flight (written just before what will name it), which
// is why callers remove only strays older than a grace.
type Stray struct {
	Name     string    // the driver's name for it, what RemoveStray takes
	Kind     string    // StrayObject or StrayMultipart
	Size     int64     // bytes it holds
	Modified time.Time // when it was last written (initiated, for a multipart upload)
}

// StrayLister is a driver that can find and remove its strays. A driver
// whose every stray is visible through Walk or Uploads need not be one.
type StrayLister interface {
	// Strays calls fn for every stray. What is named when Strays begins,
	// and stays named, is never reported.
	Strays(fn func(Stray) error) error
	// RemoveStray deletes a stray Strays reported; a missing one is
	// success. Names Strays cannot report are ErrInvalidName.
	RemoveStray(name string) error
}

// StoredSizer is a driver whose Stat reads a record of the blob (cheap)
// rather than its bytes, and which can also look at the bytes themselves.
type StoredSizer interface {
	// StoredSize returns the size of the bytes stored for d and, for a
	// LocatingPromoter, where they are (as Locate), or ErrNotFound when
	// the blob or the bytes it names are missing.
	StoredSize(d digest.Digest) (size int64, loc string, err error)
}

// Usage is what a blob store holds, in bytes.
type Usage struct {
	BlobBytes   int64 `json:"blobBytes"`   // blobs' bytes (with strays of that kind)
	BlobObjects int64 `json:"blobObjects"` // objects or files holding them
	UploadBytes int64 `json:"uploadBytes"` // bytes of uploads in progress
	OtherBytes  int64 `json:"otherBytes"`  // indexes, upload states and the like
}

// Usager is a driver that can say what it holds more cheaply, or more
// truly, than walking its blobs and uploads.
type Usager interface {
	Usage() (Usage, error)
}
