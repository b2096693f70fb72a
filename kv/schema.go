package kv

// Every bucket and key name of the database. See doc.go for the tree.
var (
	bucketMeta       = []byte("meta")
	bucketBlobs      = []byte("blobs")
	bucketRepos      = []byte("repos")
	bucketLeases     = []byte("leases")
	bucketTombstones = []byte("tombstones")

	// Buckets inside each repository bucket.
	bucketManifests    = []byte("manifests")
	bucketContent      = []byte("content")
	bucketTags         = []byte("tags")
	bucketTagsByDigest = []byte("tagsbydigest")
	bucketLinks        = []byte("links")
	bucketReferrers    = []byte("referrers")

	keySchemaVersion = []byte("schema")
)

// topBuckets are created by the first migration.
var topBuckets = [][]byte{bucketMeta, bucketBlobs, bucketRepos, bucketLeases, bucketTombstones}

// repoBuckets are created in every repository bucket.
var repoBuckets = [][]byte{bucketManifests, bucketContent, bucketTags, bucketTagsByDigest, bucketLinks, bucketReferrers}

// repoContentBuckets are the ones whose emptiness makes a repository disappear.
var repoContentBuckets = [][]byte{bucketManifests, bucketTags, bucketLinks}

// sep separates the parts of composite keys; it cannot occur in a digest,
// tag or repository name.
const sep = 0x00
