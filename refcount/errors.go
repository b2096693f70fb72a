package refcount

import (
	"errors"
	"fmt"
	"strings"
)

var (
	ErrNameUnknown     = errors.New("repository name not known to registry")
	ErrBlobUnknown     = errors.New("blob unknown to registry")
	ErrManifestUnknown = errors.New("manifest unknown to registry")
	ErrDigestMismatch  = errors.New("provided digest did not match content")
	// ErrInUse: deleting the object would break a manifest that references it.
	ErrInUse = errors.New("object is in use")
	// ErrNotCached: cache bookkeeping asked of a repository under no
	// cache prefix.
	ErrNotCached = errors.New("not a cached repository")
	// ErrImmutable: the change would move or delete an immutable tag.
	ErrImmutable = errors.New("tag is immutable")
	// ErrRetention: a push would set more tags than its repository's
	// retention rule keeps.
	ErrRetention = errors.New("retention keeps fewer tags")
)

// MissingError lists what a manifest references that the repository lacks.
type MissingError struct {
	Digests []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("manifest references content unknown to the repository: %s", strings.Join(e.Digests, ", "))
}
