// Package refcount owns the reference model: which objects hold which alive,
// the counts that record it, the leases that cover a push in flight, and the
// cascade that deletes whatever nothing holds any more.
//
// Objects are blobs (global), blob links (a blob made visible in one
// repository), manifests and tags (per repository). Edges:
//
//	tag          -> manifest
//	index        -> child manifest (same repository)
//	manifest     -> each distinct config and layer blob, through the link in its repository
//	subject S    -> manifest M whose subject is S (M lives as long as S, unless held otherwise)
//	link         -> blob (a blob lives while any repository links it)
//
// A finished upload, a mount and a manifest pushed by digest that nothing
// references hold a lease instead; a lease ends when a real reference takes
// over or when it expires. A HEAD that answers "exists" pins the object for
// a short while; a pin that is still live when the object's last edge goes
// turns into a lease, so a push that was told "exists" can still reference
// it. Pins live in memory, or, when other processes share the database
// (Options.Shared), as rows of it, one per client told "exists"
// (pinrows.go).
//
// Every change of edges, counts and leases happens inside one kv transaction
// together with the write that caused it; an object whose count reaches zero
// without a live lease or pin is deleted in that same transaction,
// cascading. Blob files are removed by package blobs right after the
// transaction commits, and a tombstone in the database covers a crash in
// between. With Options.Shared, several processes share the database and
// the blob store: the locks of digests and uploads are the database's
// (kv.DB.Lock), and
// FinishPending, on a ticker, finishes what a process that died left.
// The pull-through cache's repositories (those under Options.CachePrefixes)
// hold ordinary records; the package adds their recency (TouchCached,
// MarkFetched), the upstream's last answer for their tags (SetCheckedTag),
// and their eviction, least recently pulled image first, through the same
// cascade as a delete (EvictCache, cache.go). Fetching from an upstream is
// not its concern.
// The web UI's reads (Repositories, TagPage, ManifestView, browse*.go) are
// one read-only transaction each and read only the rows a page shows.
// The operator's rules (Options.Policies, package policy) are enforced in
// the same transactions: immutable tags refuse to move or go
// (immutable.go), and retention deletes the tags its rule does not keep,
// in a manifest PUT and in RetentionSweep (retention.go), with the
// manifests' last pulls recorded as the cache's are.
// A manifest PUT that takes a quota's namespace over a limit is refused
// (ErrQuota, quota.go); the usage it checks is kept by package kv's write
// methods in every transaction that changes the namespace, and rebuilt
// when the quotas' globs change (OwnQuotas).
// Events (outbox.go): a transaction gathers what it did that endpoints
// (Options.Events) want told in its change (a push and the tags it moved,
// a delete with what went and the bytes freed) and writes them to the
// outbox, one row per endpoint, before it commits, so that an event exists
// exactly when its change does; a rerun gathers them anew. Each row takes
// the next number of its endpoint's sequence, read and written in the
// transaction: on PostgreSQL under SERIALIZABLE, two event-producing
// writes for one endpoint conflict and one reruns, so the numbers follow
// commit order across replicas. That serialises event-producing writes
// per endpoint (and only those); ordering by a clock or by an id taken
// outside the transaction would be cheaper and wrong. Delivery is package
// api/events's, through the calls of outbox_ops.go.
// This package must not import bbolt nor write HTTP responses.
package refcount
