package refcount

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/opencontainers/go-digest"
)

// Options configure a Registry.
type Options struct {
	// UploadGrace is the lease of a finished upload, a mount, and a manifest
	// pushed by digest that nothing references yet.
	UploadGrace time.Duration
	// PinWindow is how long a HEAD that answered "exists" holds the
	// object.
	PinWindow time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// UploadLife is how long an upload may stay idle (the server's
	// ExpireUploads age): a deferred upload's token is good for that
	// long from the upload's start (blobs.SetUploadLife).
	// 0: no limit, as ExpireUploads(0) ends nothing.
	UploadLife time.Duration
	// Shared says that other processes share the database and the blob
	// store, so what must hold across them lives in the database, not in
	// this process's memory: HEAD pins are rows there, the digest locks
	// are the database's (when it has such locks), strays are removed only
	// once older than DefaultOrphanGrace, and FinishPending finishes what
	// a process that died left half done.
	Shared bool
	// CachePrefixes name the pull-through cache's repositories: a
	// repository <prefix>/... is a cached one, whose images EvictCache
	// may delete and whose manifests and tags have cache rows.
	CachePrefixes []string
	// CacheMaxBytes is the cache's byte budget as Stats reports it (0:
	// none); EvictCache is given its own.
	CacheMaxBytes int64
	// Policies are the operator's rules on repositories (immutable tags,
	// retention, quotas), enforced inside the write transactions; nil:
	// none. Its quotas apply only with OwnQuotas.
	Policies *policy.Set
	// OwnQuotas: the quotas of Policies are the ones in force (kvreg
	// serve's configuration): they are recorded in the database, and the
	// usage is rebuilt when they map repositories otherwise than the
	// recorded ones. Without it the recorded quotas apply, whatever
	// Policies says, so that what an operator command deletes is charged
	// as the server charges it.
	OwnQuotas bool
	// Events are the receivers of events: each change they want is
	// written to the outbox in its transaction (outbox.go).
	Events []Endpoint
}

// Registry applies the reference model to a database and a blob store.
type Registry struct {
	db    *kv.DB
	blobs *blobs.Store
	opts  Options
	pins  pins

	mu      sync.Mutex
	cleared []tombstone // tombstones whose files are gone, to forget in the next write

	// commitMu is held shared by every write transaction, so that a pin
	// in memory can wait out the writes that began before it (headPin).
	commitMu sync.RWMutex

	// sweepDue is the earliest time (Unix ns) a lease in the store may
	// expire, as far as this process knows: write transactions sweep only
	// from then on, so that most of them do not read the lease index (a
	// read that, on a serializable database, conflicts with every push
	// adding a lease next to it). 0: unknown, sweep. Lowered by every
	// lease this process puts, raised after a sweep from a read of the
	// index; Sweep (the ticker) sweeps whatever it says, for leases other
	// processes put.
	sweepDue atomic.Int64

	// pinWrites counts the pin rows written (Shared): HEADs that were
	// write transactions.
	pinWrites atomic.Uint64
	// evictMu serialises EvictCache.
	evictMu sync.Mutex
	// cacheWrites counts the pulls TouchCached wrote.
	cacheWrites atomic.Uint64

	// opened is when New ran, by the registry's clock: see Recover.
	opened time.Time
	// recovered is set once Recover has run (OpenStores, Repair): the
	// strays before opened are then gone, not pending (see Fsck).
	recovered atomic.Bool

	pending pending // tombstones seen by FinishPending

	// eventsHook, when set (OnEvents), runs after a commit that wrote
	// outbox rows.
	eventsHook atomic.Pointer[func()]

	// recordHook, when set (tests), runs in a commit between the
	// promotion of its blob and the record of it.
	recordHook func(digest.Digest)
}

// New returns a Registry over an open database and blob store.
func New(db *kv.DB, bs *blobs.Store, opts Options) *Registry {
	if opts.UploadGrace <= 0 {
		opts.UploadGrace = time.Hour
	}
	if opts.PinWindow <= 0 {
		opts.PinWindow = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Policies != nil && opts.OwnQuotas {
		db.SetQuotaNamespaces(quotaMapper(opts.Policies.Quotas))
	}
	if opts.Shared && db.SharesLocks() {
		bs.SetSharedLock(db.Lock)
	}
	bs.SetUploadLife(opts.UploadLife, opts.Now)
	bs.KeepStatesIn(uploadStates{db})
	r := &Registry{db: db, blobs: bs, opts: opts, opened: opts.Now()}
	r.pins.concurrent = db.ConcurrentWrites()
	return r
}

// DB exposes the database to tests and tools that generate records.
func (r *Registry) DB() *kv.DB { return r.db }

// StoreStats are the database's counts of write transactions, round trips
// and reruns after conflicts; ok is false when the database does not count
// them.
func (r *Registry) StoreStats() (s kv.TxStats, ok bool) { return r.db.TxStats() }

// Ready reports whether the registry can serve reads and writes now: its
// database answers, takes writes and has a schema this kvreg knows (a
// replica of a newer one may have moved it on), with replicas its quota rules are
// the ones the database records, and its blob storage, when remote,
// answers.
func (r *Registry) Ready() error {
	if err := r.db.Ready(); err != nil {
		return err
	}
	if err := r.quotasInStep(); err != nil {
		return err
	}
	return r.blobs.Ready()
}

// Blobs exposes the blob store to tests and tools that look at what it
// stores (Has, Blobs, Uploads); writes go through the Registry.
func (r *Registry) Blobs() *blobs.Store { return r.blobs }

func (r *Registry) now() int64 { return r.opts.Now().UnixNano() }

// Clock is the registry's clock (Options.Now), for what measures time
// beside it.
func (r *Registry) Clock() time.Time { return r.opts.Now() }

// change collects what a write transaction did that must be acted on after
// it commits.
type change struct {
	now      int64
	grace    int64
	freed    []digest.Digest // blob records deleted: their files go after commit
	usedPins []pinKey        // pins in memory a real reference took over
	// uploadPins: uploads finished, counted in their client's pin in
	// memory after commit
	uploadPins []pinKey
	// pinClient: the client whose pin rows a manifest takes over
	pinClient string
	swept     int // expired leases processed
	// sweptInline: the transaction swept on its way (a sweep was due)
	sweptInline bool
	Reclaimed   int64 // bytes of blobs freed
	// pins in memory to forget after commit: they became leases, or their
	// object was deleted on purpose
	droppedPins []pinKey
	// gone: the manifests and links of cached repositories deleted, for
	// EvictCache's count of the cache's bytes
	gone []goneRecord
	// removed: the tags, manifests and blobs deleted, for the report of
	// a delete (see RemovePlan)
	removed removal
	// noEvents: no endpoint takes events, so none is gathered
	noEvents bool
	// marks: how far the attempt that marked usedPins got; settled is
	// closed once that is known (see pins)
	marks   markState
	settled chan struct{}
	// events: what the transaction did that endpoints are told, written
	// to the outbox before it commits (outbox.go); moves: tags a push
	// moved, made events once the push's own is; origin: who did it;
	// outboxRows: the rows written, to wake the delivery after commit
	events     []Event
	moves      []Event
	origin     Origin
	outboxRows int
}

// goneRecord is a manifest (with its size) or a link that a write deleted.
type goneRecord struct {
	manifest     bool
	repo, digest string
	size         int64
}

// updateTx runs fn in a write transaction after sweeping a bounded number of
// expired leases. Concurrent calls may share one transaction (and one
// fsync), so fn may run more than once: everything it does goes to the database or
// to c, which is made anew on every run. It does not touch files; finish
// does.
func (r *Registry) updateTx(fn func(tx *kv.Tx, c *change) error) (*change, error) {
	r.mu.Lock()
	cleared := r.cleared
	r.cleared = nil
	r.mu.Unlock()
	var c *change
	r.commitMu.RLock()
	defer r.commitMu.RUnlock()
	due := r.sweepDue.Load()
	var earliest int64
	err := r.db.Update(func(tx *kv.Tx) error {
		// An attempt that runs again did not commit: the pins its last
		// attempt marked count again.
		r.pins.unmark(c)
		now := r.now()
		c = &change{now: now, grace: now + int64(r.opts.UploadGrace), noEvents: len(r.opts.Events) == 0}
		for _, t := range cleared {
			if err := tx.DeleteTombstone(t.digest, t.gen); err != nil {
				return err
			}
		}
		if now >= due {
			n, err := r.sweepTx(tx, c, sweepInline)
			if err != nil {
				return err
			}
			c.swept, c.sweptInline = n, true
		}
		if err := fn(tx, c); err != nil {
			// Before another transaction of the batch runs again.
			r.pins.unmark(c)
			return err
		}
		if err := r.writeOutboxTx(tx, c); err != nil {
			r.pins.unmark(c)
			return err
		}
		earliest = tx.EarliestLeasePut()
		r.pins.setMarks(c, committing)
		if len(c.usedPins) > 0 {
			// A COMMIT the database refused is known before the rerun's
			// backoff: the marks count again at once, rather than keep
			// another transaction waiting on them (settle) meanwhile.
			attempt := c
			tx.OnAbort(func() { r.pins.unmark(attempt) })
		}
		return nil
	})
	if err != nil {
		r.pins.unmark(c)
		r.mu.Lock()
		r.cleared = append(r.cleared, cleared...)
		r.mu.Unlock()
		return nil, err
	}
	r.pins.setMarks(c, committed)
	r.leasesPut(earliest)
	if c.sweptInline && c.swept < sweepInline {
		r.planSweep()
	}
	return c, nil
}

// sweepInline is how many expired leases a write transaction sweeps on its
// way, when one is due.
const sweepInline = 64

// leasesPut lowers sweepDue to the earliest expiry of leases just put.
func (r *Registry) leasesPut(earliest int64) {
	if earliest == 0 {
		return
	}
	for {
		// 0 (unknown: the next write sweeps) is as early as it gets.
		cur := r.sweepDue.Load()
		if cur == 0 || cur <= earliest {
			return
		}
		if r.sweepDue.CompareAndSwap(cur, earliest) {
			return
		}
	}
}

// planSweep, after a sweep that left nothing expired, reads when the next
// lease expires and sets sweepDue to it, unless a lease put meanwhile has
// lowered it (the compare-and-swap fails then, which is safe: sooner).
func (r *Registry) planSweep() {
	before := r.sweepDue.Load()
	next := int64(math.MaxInt64)
	err := r.db.View(func(tx *kv.Tx) error {
		ls, err := tx.ExpiredLeases(math.MaxInt64, 1)
		if err == nil && len(ls) == 1 {
			next = ls[0].Expiry
		}
		return err
	})
	if err != nil {
		return // sweepDue stays: the next write sweeps again
	}
	r.sweepDue.CompareAndSwap(before, next)
}

// finish acts on a committed change: forgets used pins and removes the
// files of freed blobs, each under its digest lock and only if no record
// has come back for it meanwhile.
func (r *Registry) finish(c *change) error {
	if c == nil {
		return nil
	}
	r.eventsCommitted(c)
	r.pins.take(c.usedPins, c)
	for _, k := range c.uploadPins {
		r.pins.addUpload(k, c.now+int64(r.opts.PinWindow))
	}
	for _, k := range c.droppedPins {
		r.pins.drop(k)
	}
	if len(c.freed) == 0 {
		return nil
	}
	if err := r.removeFiles(c.freed); err != nil {
		return fmt.Errorf("refcount: remove freed blobs: %w", err)
	}
	return nil
}

// tombstone names one deletion's tombstone.
type tombstone struct {
	digest string
	gen    uint64
}

// removeChunk bounds the digests whose bytes removeFiles removes under
// one taking of their locks: the commits of those digests wait meanwhile,
// and each shared lock is an entry of PostgreSQL's lock table.
const removeChunk = 64

// removeFiles removes the bytes of blobs ds whose records are gone, under
// their digests' locks, taken removeChunk at a time: one transaction per
// chunk reads their records and tombstones and claims the tombstones of
// those unrecorded (kv.Tx.ClaimTombstone), so that a commit of one of
// them whose answer was lost, its COMMIT still on its way, cannot record
// it after this check and over bytes removed here; then their bytes go,
// and their tombstones are forgotten with the next write.
func (r *Registry) removeFiles(ds []digest.Digest) error {
	var firstErr error
	var done []tombstone
	for chunk := range slices.Chunk(ds, removeChunk) {
		d, err := r.removeChunk(chunk)
		done = append(done, d...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// The removals are durable before their tombstones can be forgotten.
	if err := r.blobs.SyncDirs(); err != nil {
		return err
	}
	r.mu.Lock()
	r.cleared = append(r.cleared, done...)
	r.mu.Unlock()
	return firstErr
}

// removeChunk is removeFiles of at most removeChunk digests, but for the
// sync: it returns the tombstones whose bytes it removed.
func (r *Registry) removeChunk(ds []digest.Digest) ([]tombstone, error) {
	unlock, err := r.blobs.Lock(ds...)
	if err != nil {
		return nil, err
	}
	type gone struct {
		d    digest.Digest
		tb   kv.Tombstone
		tomb bool // a tombstone to forget once the bytes are gone
	}
	var unrecorded []gone
	err = r.db.Update(func(tx *kv.Tx) error {
		unrecorded = unrecorded[:0]
		// One batch for the reads: on PostgreSQL, one round trip, and
		// one more for the claims and the commit.
		p := tx.Prefetch()
		for _, d := range ds {
			p.Blob(string(d)).Tombstone(string(d))
		}
		if err := p.Read(); err != nil {
			return err
		}
		for _, d := range ds {
			_, exists, err := tx.Blob(string(d))
			if err != nil {
				return err
			}
			if exists {
				// Its record came back: its bytes are its own, and a
				// later deletion writes its own tombstone.
				continue
			}
			tb, tomb, err := tx.ClaimTombstone(string(d))
			if err != nil {
				return err
			}
			unrecorded = append(unrecorded, gone{d, tb, tomb})
		}
		return nil
	})
	if err != nil {
		unlock()
		return nil, err
	}
	var firstErr error
	done := make([]tombstone, 0, len(unrecorded))
	for _, g := range unrecorded {
		// The deleted record's location names the bytes, so that the
		// store need not look them up (an older tombstone, or none, has
		// the store find them).
		if err := r.blobs.RemoveAt(g.d, g.tb.Location); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		// Only a tombstone whose bytes this removal saw gone is cleared,
		// by its generation: a deletion since writes a new one.
		if g.tomb {
			done = append(done, tombstone{string(g.d), g.tb.Gen})
		}
	}
	unlock()
	return done, firstErr
}

// update is updateTx followed by finish.
func (r *Registry) update(fn func(tx *kv.Tx, c *change) error) (*change, error) {
	c, err := r.updateTx(fn)
	if err != nil {
		return nil, err
	}
	return c, r.finish(c)
}

// Recover finishes work a crash interrupted: blob files whose records were
// deleted (tombstones) and uploads caught between linking and recording.
// Its time is proportional to that work, not to the store, but for the
// listing of strays (on S3, listings of the bucket, about one request per
// thousand objects, and a read of each index whose ETag is not an MD5).
func (r *Registry) Recover() error {
	if _, err := r.blobs.Recover(r.recordedOrFenced); err != nil {
		return fmt.Errorf("refcount: recover uploads: %w", err)
	}
	var tomb []string
	if err := r.db.View(func(tx *kv.Tx) error {
		var err error
		tomb, err = tx.Tombstones()
		return err
	}); err != nil {
		return err
	}
	var ds []digest.Digest
	for _, t := range tomb {
		if d, err := blobs.ParseDigest(t); err == nil {
			ds = append(ds, d)
		}
	}
	if err := r.removeFiles(ds); err != nil {
		return err
	}
	// Strays (what a process that died mid-upload or mid-removal left,
	// which nothing names) last written before this registry opened: the
	// database's one-writer lock was taken before then, so whatever wrote
	// them had died (or was this process, which had written nothing yet),
	// and what this process writes later is newer and kept. So a kill -9
	// leaves nothing once the next process has started, and Recover stays
	// safe when Repair calls it while uploads are in flight. S3 stamps
	// objects with its own clock: one running ahead of the registry's by
	// more than a restart takes leaves those strays to fsck --repair.
	// Processes sharing the store write at any time: then only strays
	// older than DefaultOrphanGrace go (what an operation in flight has
	// not named yet is far younger).
	before := r.opened
	if r.opts.Shared {
		before = before.Add(-DefaultOrphanGrace)
	}
	if _, err := r.blobs.RemoveStrays(before); err != nil {
		return fmt.Errorf("refcount: remove strays: %w", err)
	}
	// Forget the tombstones now rather than at the next write. That
	// transaction also sweeps leases that expired while kvreg was down:
	// the files of what it frees go right after it (update, not
	// updateTx), so that a registry that then only serves reads leaves
	// no file behind a deleted record.
	_, err := r.update(func(*kv.Tx, *change) error { return nil })
	return err
}

// Sweep deletes what expired leases held, up to max leases; it returns how
// many it processed. Writes sweep a few as they go; a ticker calls this for
// the rest.
func (r *Registry) Sweep(max int) (int, error) {
	var n int
	c, err := r.update(func(tx *kv.Tx, c *change) error {
		var err error
		n, err = r.sweepTx(tx, c, max)
		return err
	})
	if err != nil {
		return 0, err
	}
	if n < max {
		r.planSweep()
	}
	if err := r.expirePins(max); err != nil {
		return 0, err
	}
	return c.swept + n, nil
}
