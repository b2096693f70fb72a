package kv

// Every bucket and key name of the database. See doc.go for the tree.
var (
	bucketMeta       = []byte("meta")
	bucketBlobs      = []byte("blobs")
	bucketRepos      = []byte("repos")
	bucketLeases     = []byte("leases")
	bucketTombstones = []byte("tombstones")
	bucketCounters   = []byte("counters")
	bucketBlobLinks  = []byte("bloblinks")

	// Buckets inside each repository bucket.
	bucketManifests    = []byte("manifests")
	bucketContent      = []byte("content")
	bucketTags         = []byte("tags")
	bucketTagsByDigest = []byte("tagsbydigest")
	bucketLinks        = []byte("links")
	bucketReferrers    = []byte("referrers")

	keySchemaVersion = []byte("schema")
	keyRepoStats     = []byte("stats") // in each repository bucket

	// Keys of the counters bucket.
	keyCtrRepos         = []byte("repositories")
	keyCtrTags          = []byte("tags")
	keyCtrManifests     = []byte("manifests")
	keyCtrManifestBytes = []byte("manifestBytes")
	keyCtrBlobs         = []byte("blobs")
	keyCtrBlobBytes     = []byte("blobBytes")
	keyCtrLinks         = []byte("links")
	keyCtrSharedBytes   = []byte("sharedBytes")
	keyCtrLogicalBytes  = []byte("logicalBytes")
	keyCtrUnrefBlobs    = []byte("unreferencedBlobs")
	keyCtrUnrefBytes    = []byte("unreferencedBytes")
	keyCtrLeases        = []byte("leases")
)

// topBuckets are created by the first migration.
var topBuckets = [][]byte{bucketMeta, bucketBlobs, bucketRepos, bucketLeases, bucketTombstones, bucketCounters, bucketBlobLinks}

// repoBuckets are created in every repository bucket.
var repoBuckets = [][]byte{bucketManifests, bucketContent, bucketTags, bucketTagsByDigest, bucketLinks, bucketReferrers}

// repoContentBuckets are the ones whose emptiness makes a repository disappear.
var repoContentBuckets = [][]byte{bucketManifests, bucketTags, bucketLinks}

// sep separates the parts of composite keys; it cannot occur in a digest,
// tag or repository name.
const sep = 0x00
