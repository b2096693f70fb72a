package driver

import "github.com/opencontainers/go-digest"

// PromoteTeller is a driver that can tell, after a crash, whether the blob
// of a digest is the one an upload's Promote created: what Unpromote
// would remove. fsck uses it to tell the file an interrupted commit left
// (which recovery removes) from a file nothing will remove.
type PromoteTeller interface {
	// Promoted reports whether the blob of d is the one upload id's
	// Promote created. A missing upload or blob is false.
	Promoted(id string, d digest.Digest) (bool, error)
}
