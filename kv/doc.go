// Package kv owns kvreg's metadata: the schema, its versions and
// migrations, and the typed reads and writes that every transaction is made
// of, with all their bookkeeping (counts, counters, repository stats,
// reverse indexes). It stores them in an ordered key-value store behind
// package kv/backend (bbolt's, in kv/bolt, is what Open opens) and never
// imports bbolt itself. It knows nothing of HTTP or of blob files, and it
// does not decide what a reference means: the rules (counts, leases,
// cascades) live in package refcount, which composes the operations here
// inside one kv transaction.
//
// The schema, version 2: flat tables, ordered by the bytes of their keys
// and nothing else. Keys of per-repository tables start with the
// repository's name and 0x00, which occurs in no repository name, tag or
// digest, so that one repository's keys are one contiguous range.
//
//	meta
//	  schema                      -> uint32 BE, the schema version
//	repositories                  one row per repository; it exists while the row does
//	  <repository>                -> tags | manifests | links | bytes | uniqueBytes, int64 BE each
//	manifests
//	  <repo> 0x00 <digest>        -> refs uint64 BE | lease int64 BE | pending uint64 BE
//	                                 | JSON metadata (edges, type, size)
//	content
//	  <repo> 0x00 <digest>        -> the manifest bytes exactly as pushed
//	tags
//	  <repo> 0x00 <tag>           -> <digest>
//	tagsbydigest                  reverse index of tags
//	  <repo> 0x00 <digest> 0x00 <tag> -> empty
//	links                         blobs visible in a repository
//	  <repo> 0x00 <digest>        -> refs uint64 BE (manifests there using it) | lease int64 BE
//	                                 | pending uint64 BE (holds not yet taken over)
//	referrers
//	  <repo> 0x00 <subject> 0x00 <digest> -> 1 byte: 1 if the subject edge is counted
//	blobs                         global blob records, one per digest
//	  <digest>                    -> size int64 BE | links uint64 BE (repositories linking it)
//	                                 | refs uint64 BE (manifest references, all repositories)
//	bloblinks                     which repositories link a blob (reverse of links)
//	  <digest> 0x00 <repository>  -> empty
//	counters                      store totals, changed by the writes they count
//	  repositories, tags, manifests, manifestBytes, blobs, blobBytes, links,
//	  sharedBytes, logicalBytes, unreferencedBlobs, unreferencedBytes, leases
//	                              -> int64 BE each
//	leases                        every live lease, ordered by expiry
//	  <expiry int64 BE> <kind> <repository> 0x00 <digest> -> empty
//	tombstones                    blob files whose records are gone
//	  <digest>                    -> uint64 BE: a random generation, new at each deletion
//
// A repository disappears (its row, and what is left of it in content,
// tagsbydigest and referrers) when its last manifest, tag and link go; "is
// it empty" is a prefix scan that stops at the first key.
//
// Version 1 (bbolt only) held the per-repository tables as buckets nested
// in repos/<repository>/, with keys lacking the repository prefix, and the
// row of repositories as the key stats inside that bucket. Opening it
// writable moves them into the flat tables (migrate.go); a read-only open
// refuses it with ErrSchemaTooOld.
//
// The write methods of Tx keep blobs' links and refs, bloblinks, counters
// and each repository's stats in step with the records they count, inside
// the same transaction; callers never set them. Leases and expiry times are
// Unix nanoseconds. Counts and times are fixed-width big-endian so that
// keys sort by value.
package kv
