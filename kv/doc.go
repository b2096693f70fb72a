// Package kv owns kvreg's bbolt database: the schema, its versions and
// migrations, and the typed reads and writes that every transaction is made
// of. It is the only package that imports bbolt. It knows nothing of HTTP or
// of blob files, and it does not decide what a reference means: the rules
// (counts, leases, cascades) live in package refcount, which composes the
// operations here inside one kv transaction.
//
// The schema, version 1:
//
//	meta/
//	  schema                      -> uint32 BE, the schema version
//	blobs/                        global blob records, one per digest
//	  <digest>                    -> size int64 BE | links uint64 BE (repositories linking it)
//	                                 | refs uint64 BE (manifest references, all repositories)
//	bloblinks/                    which repositories link a blob (reverse of links/)
//	  <digest> 0x00 <repository>  -> empty
//	counters/                     store totals, changed by the writes they count
//	  repositories, tags, manifests, manifestBytes, blobs, blobBytes, links,
//	  sharedBytes, logicalBytes, unreferencedBlobs, unreferencedBytes, leases
//	                              -> int64 BE each
//	repos/
//	  <repository name>/          a bucket per repository; removed when it empties
//	    stats                     -> tags | manifests | links | bytes | uniqueBytes, int64 BE each
//	    manifests/
//	      <digest>                -> refs uint64 BE | lease int64 BE | pending uint64 BE
//	                                 | JSON metadata (edges, type, size)
//	    content/
//	      <digest>                -> the manifest bytes exactly as pushed
//	    tags/
//	      <tag>                   -> <digest>
//	    tagsbydigest/
//	      <digest> 0x00 <tag>     -> empty (reverse index of tags/)
//	    links/                    blobs visible in this repository
//	      <digest>                -> refs uint64 BE (manifests here using it) | lease int64 BE
//	                                 | pending uint64 BE (holds not yet taken over)
//	    referrers/
//	      <subject> 0x00 <digest> -> 1 byte: 1 if the subject edge is counted
//	leases/                       every live lease, ordered by expiry
//	  <expiry int64 BE> <kind> <repository> 0x00 <digest> -> empty
//	tombstones/                   blob files whose records are gone
//	  <digest>                    -> uint64 BE: id of the transaction that deleted the record
//
// The write methods of Tx keep blobs' links and refs, bloblinks/, counters/
// and each repository's stats in step with the records they count, inside
// the same transaction; callers never set them. Leases and expiry times are
// Unix nanoseconds. Counts and times are
// fixed-width big-endian so that keys sort by value.
package kv
