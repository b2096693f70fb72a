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

// LocatingPromoter is a driver that names where a blob it creates keeps its
// bytes, so that the caller records it with the blob and a redirect is
// signed without asking the storage (IncarnationPresigner). It is
// optional.
type LocatingPromoter interface {
	// PromoteLocated is Promote, and for a blob it created the location
	// of its bytes: a name, at most 1 KiB, valid for as long as the blob
	// is not removed. loc is "" when created is false.
	PromoteLocated(id string, d digest.Digest) (created bool, loc string, err error)
}

// LocatingRemover is a LocatingPromoter that removes a blob whose bytes'
// location the caller kept, without looking it up. It is optional.
type LocatingRemover interface {
	// RemoveLocated is Remove of blob d, whose bytes PromoteLocated named
	// loc.
	RemoveLocated(d digest.Digest, loc string) error
}
