package refcount

import "github.com/kvreg/kvreg/refcount/manifest"

// The manifest types refcount stores; package manifest defines them.
const (
	MediaTypeOCIManifest    = manifest.MediaTypeOCIManifest
	MediaTypeOCIIndex       = manifest.MediaTypeOCIIndex
	MediaTypeDockerManifest = manifest.MediaTypeDockerManifest
	MediaTypeDockerList     = manifest.MediaTypeDockerList
)

// Descriptor is what Referrers lists for each referrer.
type Descriptor = manifest.Descriptor
