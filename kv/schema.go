package kv

// Every table and key name of the store, of every schema version. See
// doc.go for the layout.
var (
	tableMeta       = []byte("meta")
	tableBlobs      = []byte("blobs")
	tableLeases     = []byte("leases")
	tableTombstones = []byte("tombstones")
	tableCounters   = []byte("counters")
	tableBlobLinks  = []byte("bloblinks")
	tablePins       = []byte("pins")       // version 4; keys gain the client in version 5
	tablePinExpiry  = []byte("pinexpiry")  // version 4; keys gain the client in version 5
	tableAuthKeys   = []byte("authkeys")   // version 6: token signing keys
	tableRobots     = []byte("robots")     // version 6: robot accounts
	tableQuotaUsage = []byte("quotausage") // version 10: each quota namespace's usage (counters)
	tableQuotaBlobs = []byte("quotablobs") // version 10: repositories of a namespace referencing a blob
	// Version 9: events waiting for delivery, per endpoint.
	tableOutbox       = []byte("outbox")       // <endpoint> 0x00 <seq> -> row; counters <endpoint>: rows
	tableOutboxSeq    = []byte("outboxseq")    // <endpoint> -> the last sequence number taken
	tableOutboxClaims = []byte("outboxclaims") // <endpoint> -> which process delivers, until when

	tableUploadStates = []byte("uploadstates") // version 13: the blob store's uploads in progress

	// Per-repository tables; their keys start with <repository> 0x00.
	tableRepos        = []byte("repositories") // <repository> -> stats; the repository exists
	tableManifests    = []byte("manifests")
	tableContent      = []byte("content")
	tableTags         = []byte("tags")
	tableTagsByDigest = []byte("tagsbydigest")
	tableLinks        = []byte("links")
	tableReferrers    = []byte("referrers")
	tableCached       = []byte("cached")     // version 7: a cached manifest's pulls
	tableCachedTags   = []byte("cachedtags") // version 7: a cached tag's upstream check
	tableTagPushed    = []byte("tagpushed")  // version 8: when a tag last moved

	keySchemaVersion = []byte("schema")
	// keyCachePrefixes: the pull-through cache's repository prefixes, as
	// the last kvreg serve configured them (for the operator commands).
	keyCachePrefixes = []byte("cacheprefixes")
	// keyQuotaRules: the quota namespaces the usage tables were computed
	// for (version 10).
	keyQuotaRules = []byte("quotarules")

	// Names of a quota namespace's counters (keys <namespace> 0x00 <name>
	// among the counters of table quotausage).
	keyQuotaBytes = []byte("bytes")
	keyQuotaTags  = []byte("tags")

	// Keys of the counters table.
	keyCtrRepos         = []byte("repositories")
	keyCtrTags          = []byte("tags")
	keyCtrManifests     = []byte("manifests")
	keyCtrManifestBytes = []byte("manifestBytes")
	keyCtrBlobs         = []byte("blobs")
	keyCtrBlobBytes     = []byte("blobBytes")
	keyCtrLinks         = []byte("links")
	keyCtrLogicalBytes  = []byte("logicalBytes")
	keyCtrLeases        = []byte("leases")

	// Names of a repository's counters (keys <repo> 0x00 <name> among the
	// counters of table repositories).
	keyRepoTags      = []byte("tags")
	keyRepoManifests = []byte("manifests")
	keyRepoLinks     = []byte("links")
	keyRepoBytes     = []byte("bytes")
)

// Version 2 also kept these totals as values of table counters; version
// 3 computes them when read. Read only by migrateCountersV3.
var v2CrossCounters = [][]byte{[]byte("sharedBytes"), []byte("unreferencedBlobs"), []byte("unreferencedBytes")}

// repoContentTables are the ones whose emptiness makes a repository
// disappear.
var repoContentTables = [][]byte{tableManifests, tableTags, tableLinks}

// repoIndexTables are pruned with the repository (what is left in them
// once its content is gone).
var repoIndexTables = [][]byte{tableContent, tableTagsByDigest, tableReferrers}

// Version 1 names: a bucket per repository under "repos", the tables above
// (manifests to referrers) nested in it with keys lacking the repository,
// and its stats under the key "stats". Read only by migrateFlatV2.
var (
	v1BucketRepos = []byte("repos")
	v1KeyStats    = []byte("stats")
	v1RepoBuckets = [][]byte{tableManifests, tableContent, tableTags, tableTagsByDigest, tableLinks, tableReferrers}
)

// sep separates the parts of composite keys; it cannot occur in a digest,
// tag or repository name, so a prefix ending in sep matches exactly one
// repository (or digest) and byte order within it is the order of the rest.
const sep = 0x00
