package refcount

import (
	"fmt"
	"sync"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// pending is what FinishPending has seen of the tombstones, to tell those
// a process left behind from those whose removal is under way: a
// tombstone carries no time, so its age is how long it has been seen.
type pending struct {
	mu   sync.Mutex
	seen map[tombstone]time.Time // first seen, by the registry's clock
}

// FinishPending finishes what a process sharing the store (Options.Shared)
// left half done when it died, as Recover does at startup, each under the
// digest's shared lock: the bytes of blobs whose records were deleted
// (tombstones seen for olderThan or longer, by the registry's clock) are
// removed if no record has come back and the tombstone forgotten; commits
// stopped between promoting and recording, whose upload state was last
// written more than olderThan ago, are finished (recorded: the upload
// goes; not recorded: the blob the commit created goes too). A ticker
// calls it: a tombstone is finished at most olderThan plus one tick after
// this process first sees it, so with ticks and olderThan of 10 s a dead
// process's tombstones go within 30 s. Its cost when there is nothing to
// finish: one read of the tombstone table and one listing of the uploads.
func (r *Registry) FinishPending(olderThan time.Duration) (tombstones, uploads int, err error) {
	now := r.opts.Now()
	var ts []tombstone
	if err := r.db.View(func(tx *kv.Tx) error {
		ds, err := tx.Tombstones()
		if err != nil {
			return err
		}
		ts = ts[:0]
		for _, d := range ds {
			tb, ok, err := tx.Tombstone(d)
			if err != nil {
				return err
			}
			if ok {
				ts = append(ts, tombstone{d, tb.Gen})
			}
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("refcount: finish pending: %w", err)
	}
	due := r.pending.due(ts, now, olderThan)
	if len(due) > 0 {
		if err := r.removeFiles(due); err != nil {
			return 0, 0, fmt.Errorf("refcount: finish pending: %w", err)
		}
		// Forget the tombstones now rather than at the next write.
		if _, err := r.update(func(*kv.Tx, *change) error { return nil }); err != nil {
			return 0, 0, fmt.Errorf("refcount: finish pending: %w", err)
		}
	}
	uploads, err = r.blobs.FinishInterrupted(now.Add(-olderThan), r.recordedOrFenced)
	if err != nil {
		return len(due), uploads, fmt.Errorf("refcount: finish interrupted uploads: %w", err)
	}
	return len(due), uploads, nil
}

// due notes the tombstones listed and returns the digests of those seen
// for olderThan or longer; tombstones no longer listed are forgotten.
func (p *pending) due(ts []tombstone, now time.Time, olderThan time.Duration) []digest.Digest {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := make(map[tombstone]time.Time, len(ts))
	var out []digest.Digest
	for _, t := range ts {
		first, ok := p.seen[t]
		if !ok {
			first = now
		}
		seen[t] = first
		if now.Sub(first) >= olderThan {
			if d, err := blobs.ParseDigest(t.digest); err == nil {
				out = append(out, d)
			}
		}
	}
	p.seen = seen
	return out
}

// recordedOrFenced is the check of the blob store's sweeps of interrupted
// commits (blobs.Store.FinishInterrupted, Recover), which remove the blob
// a commit promoted unless the database records it: whether it does, and
// if it does not, a claim of d's tombstone in the same transaction
// (kv.Tx.ClaimTombstone, which leaves none where there was none), so that
// the commit, if its COMMIT is still on its way (its answer was lost),
// cannot record the blob after this check and over bytes the sweep
// removes.
func (r *Registry) recordedOrFenced(d digest.Digest) (bool, error) {
	var ok bool
	err := r.db.Update(func(tx *kv.Tx) error {
		ok = false
		if err := tx.Prefetch().Blob(string(d)).Tombstone(string(d)).Read(); err != nil {
			return err
		}
		var err error
		if _, ok, err = tx.Blob(string(d)); err != nil || ok {
			return err
		}
		_, _, err = tx.ClaimTombstone(string(d))
		return err
	})
	return ok, err
}
