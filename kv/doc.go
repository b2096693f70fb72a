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
// The schema, version 13: flat tables, ordered by the bytes of their keys
// and nothing else. Keys of per-repository tables start with the
// repository's name and 0x00, which occurs in no repository name, tag or
// digest, so that one repository's keys are one contiguous range. Besides
// its values, a table may hold counters (backend Add and Counter), a
// namespace of their own.
//
//	meta
//	  schema                      -> uint32 BE, the schema version
//	  cacheprefixes               -> JSON list: the pull-through cache's repository
//	                                 prefixes as kvreg serve last set them (absent:
//	                                 none ever set; needs no schema version)
//	  quotarules                  -> JSON {namespaces, hash, rules}: the quota namespaces
//	                                 the usage tables were computed for (absent: never)
//	repositories                  one row per repository; it exists while the row does
//	  <repository>                -> empty
//	  counters: <repository> 0x00 tags|manifests|links|bytes
//	manifests
//	  <repo> 0x00 <digest>        -> refs uint64 BE | lease int64 BE | pending uint64 BE
//	                                 | JSON metadata (edges, type, size)
//	content
//	  <repo> 0x00 <digest>        -> the manifest bytes exactly as pushed
//	tags
//	  <repo> 0x00 <tag>           -> <digest>
//	tagpushed                     when each tag last moved (the push that set it)
//	  <repo> 0x00 <tag>           -> pushed int64 BE (Unix ns)
//	tagsbydigest                  reverse index of tags
//	  <repo> 0x00 <digest> 0x00 <tag> -> empty
//	links                         blobs visible in a repository
//	  <repo> 0x00 <digest>        -> refs uint64 BE (manifests there using it) | lease int64 BE
//	                                 | pending uint64 BE (holds not yet taken over)
//	referrers
//	  <repo> 0x00 <subject> 0x00 <digest> -> 1 byte: 1 if the subject edge is counted
//	cached                        manifests of cached repositories: their recency
//	  <repo> 0x00 <digest>        -> last pulled int64 BE | fetched int64 BE (Unix ns)
//	cachedtags                    tags of cached repositories: the upstream's last answer
//	  <repo> 0x00 <tag>           -> checked int64 BE (Unix ns) | upstream digest
//	blobs                         global blob records, one per digest
//	  <digest>                    -> size int64 BE | created int64 BE (Unix ns of
//	                                 the commit that made it; a record of size
//	                                 alone, written before, reads as created 0,
//	                                 unknown, and needs no migration)
//	                                 | location (the rest, up to 1 KiB: where
//	                                 the blob store keeps these bytes, as its
//	                                 driver named them; none: not known)
//	bloblinks                     which repositories link a blob (reverse of links)
//	  <digest> 0x00 <repository>  -> empty
//	counters                      no values; store totals, as counters:
//	  repositories, tags, manifests, manifestBytes, blobs, blobBytes, links,
//	  logicalBytes, leases
//	leases                        every live lease, ordered by expiry
//	  <expiry int64 BE> <kind> <repository> 0x00 <digest> -> empty
//	tombstones                    blob files whose records are gone
//	  <digest>                    -> uint64 BE: a random generation, new at each deletion
//	                                 | location (the rest: the deleted record's, version 12)
//	pins                          answers of "exists" that hold an object for a while,
//	                              when several processes share the database; one per
//	                              client told "exists" (empty: a pin of version 4)
//	  <kind> <repository> 0x00 <digest> 0x00 <client> -> until int64 BE [0x01: the client uploaded it]
//	pinexpiry                     every pin, ordered by its end (the leases' layout)
//	  <until int64 BE> <kind> <repository> 0x00 <digest> 0x00 <client> -> empty
//	authkeys                      the keys that sign kvreg's tokens
//	  <kid>                       -> created int64 BE | retired int64 BE (0: the current key)
//	                                 | PKCS8 DER private key
//	robots                        robot accounts
//	  <name>                      -> JSON {hash (sha256 of the secret), repos, actions,
//	                                 created, expires, revoked, lastUsed}
//	quotausage                    no values; each quota namespace's usage, as counters:
//	  counters: <namespace> 0x00 bytes|tags
//	quotablobs                    blobs the manifests of a namespace reference
//	  <namespace> 0x00 <digest>   -> uint64 BE: repositories of the namespace whose
//	                                 link to the blob has refs > 0
//	outbox                        events waiting for delivery, one row per endpoint that wants it
//	  <endpoint> 0x00 <seq uint64 BE> -> JSON {attempts, next (Unix ns), lastError,
//	                                 event (refcount's encoding, opaque here)}
//	  counters: <endpoint>        rows of the endpoint (pending deliveries)
//	outboxseq                     the last sequence number an endpoint's rows took
//	  <endpoint>                  -> uint64 BE
//	outboxclaims                  which process delivers an endpoint's rows
//	  <endpoint>                  -> expiry int64 BE (Unix ns) | owner
//	uploadstates                  uploads in progress, for a blob store that keeps
//	                              their states here (S3): one row per upload
//	  <upload id>                 -> the blob store's state, its own encoding
//	                                 (opaque here); the transaction that records
//	                                 the upload's blob deletes it
//
// One hot row on purpose: outboxseq. A write that produces an event for an
// endpoint reads and rewrites its row, so that, on a serializable database,
// two such writes conflict and one reruns: an endpoint's sequence numbers,
// and so the order of its outbox keys, are the order of the commits. Only
// writes that produce events for that endpoint pay for it.
//
// No other hot rows. With several writers on a database with serializable
// isolation, a row that every write reads and rewrites serialises them all.
// So a write touches rows of its own repository, the records of the blobs
// it creates or deletes, and index entries keyed by its repository; what
// it changes elsewhere it changes by Add, which reads nothing:
//
//   - Totals and each repository's tags, manifests, links and bytes are
//     counters. Writes only add to them; they are read in read-only
//     transactions (Counters, RepoStats: stats, fsck, metrics), and repair
//     sets them by adding the difference.
//   - A blob record holds only its size, when it was made and where its
//     bytes are, which never change, so pushes that use a stored blob
//     only read it. Whether a blob is still linked anywhere is asked only when a link goes away,
//     as an existence check on bloblinks under the digest that stops at
//     the first key (bounded by backend.RangeScanner where the backend has
//     it, so that it reads no other digest's key). How many repositories link a blob, and how
//     many manifests reference it, are derived when wanted (BlobUse), not
//     stored.
//   - logicalBytes needs only the change of one link's references times the
//     blob's size, so it stays a counter. The figures that need to know
//     about every repository at once are computed when read, from one
//     snapshot: sharedBytes (blobs referenced more than once), the
//     unreferenced blobs and bytes, and a repository's uniqueBytes (bytes
//     it links that no other repository links). Keeping them as counters
//     would need each write to know a blob's count elsewhere, that is to
//     read the row that every push of the same base image changes. Counters
//     computes its three with one scan of blobs and bloblinks and one link
//     read per bloblinks entry, O(blobs + links); RepoStats computes
//     uniqueBytes with a look at at most two bloblinks keys and the blob
//     record per link of the repository.
//
// Quotas are the one place where a write reads what others write on
// purpose: a manifest PUT that adds bytes or tags to a namespace with a
// quota reads the namespace's counters after adding to them, so that two
// pushes for its last bytes conflict and one of them runs again. A write
// outside every namespace (or with no quota rule) touches neither table.
// The row of quotablobs is read only when a link's refs go from 0 to more
// or back; the first such link of the namespace adds the blob's size to
// its bytes, the last one gone takes it back.
//
// Conflicts that remain are real ones: two writes creating the same blob
// record, or a write removing the last link of a blob while another links
// or references it.
//
// A repository disappears (its row, and what is left of it in content,
// tagsbydigest and referrers) when its last manifest, tag and link go; "is
// it empty" is a prefix scan that stops at the first key.
//
// Version 8 had no outbox, outboxseq and outboxclaims; opening it
// writable only records version 9 (migrateEventsV9), and a read-only open
// refuses it with ErrSchemaTooOld.
//
// Version 12 had no uploadstates (the S3 blob store kept an upload's
// state as an object beside its bytes); opening it writable only records
// version 13 (migrateUploadStatesV13), and a read-only open refuses it
// with ErrSchemaTooOld.
//
// Version 11 had no location in tombstones; opening it writable only
// records version 12 (migrateTombstoneLocationV12): its tombstones read
// with none, and their files are found through the blob store as before.
// A read-only open refuses it with ErrSchemaTooOld.
//
// Version 10 had no location in blob records; opening it writable only
// records version 11 (migrateBlobLocationV11): its records read with none,
// and a redirect finds their bytes through the blob store as before. A
// read-only open refuses it with ErrSchemaTooOld.
//
// Version 9 had no quotausage, quotablobs and quotarules; opening it
// writable only records version 10 (migrateQuotaV10): the usage is
// computed when a kvreg with quota rules opens the store and finds no
// quotarules, or other ones (refcount rebuilds it, in one transaction). A
// read-only open refuses it with ErrSchemaTooOld.
//
// Version 7 had no tagpushed; opening it writable gives each tag its
// manifest's Created (migrateTagPushedV8), and a read-only open refuses it
// with ErrSchemaTooOld. A row of tagpushed is written and deleted with its
// tag by PutTag and DeleteTag.
//
// Version 6 had no cached and cachedtags; opening it writable only
// records version 7 (migrateCacheV7), and a read-only open refuses it with
// ErrSchemaTooOld. A row of cached or cachedtags goes with its manifest or
// tag; refcount deletes it in the same transaction.
//
// Version 5 had no authkeys and robots; opening it writable only records
// version 6 (migrateAuthV6), and a read-only open refuses it with
// ErrSchemaTooOld.
//
// Version 4 keyed a pin by its object alone (<kind> <repository> 0x00
// <digest>), so that pushes of several clients told "exists" shared one;
// opening it writable gives each pin the empty client (migratePinClientsV5),
// and a read-only open refuses it with ErrSchemaTooOld.
//
// Version 3 had no pins and pinexpiry (pins lived in one process's
// memory); opening it writable only records version 4 (migratePinsV4), and
// a read-only open refuses it with ErrSchemaTooOld.
//
// Version 2 kept the same tables, but its totals were values of table
// counters (sharedBytes and the unreferenced pair among them), each row of
// repositories held tags | manifests | links | bytes | uniqueBytes, int64
// BE each, and a blob record size | links | refs; every write rewrote them.
// Opening it writable turns them into counters and size-only records
// (migrateCountersV3); a read-only open refuses it with ErrSchemaTooOld.
//
// Version 1 (bbolt only) held the per-repository tables as buckets nested
// in repos/<repository>/, with keys lacking the repository prefix, and the
// row of repositories as the key stats inside that bucket. Opening it
// writable moves them into the flat tables (migrate.go); a read-only open
// refuses it with ErrSchemaTooOld.
//
// The write methods of Tx keep bloblinks, the counters and each
// repository's counters in step with the records they count, inside the
// same transaction; callers never set them. Leases and expiry times are
// Unix nanoseconds. Counts and times are fixed-width big-endian so that
// keys sort by value.
package kv
