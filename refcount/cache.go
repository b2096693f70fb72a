package refcount

import (
	"fmt"
	"strings"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// The pull-through cache's records are ordinary ones (manifests, tags,
// links, blobs) in cached repositories, those under Options.CachePrefixes,
// plus a cache row per manifest (its last pull) and per tag (the
// upstream's last answer). The rows go with their manifest or tag in the
// transaction that deletes it (deleteManifestTx, deleteTagTx), so that
// every row names a record (fsck checks it).

// touchEvery is how stale a manifest's last pull may be before a pull
// writes it again: pulls are reads, and most must stay so.
const touchEvery = time.Minute

// pullEvery is touchEvery for a repository whose pulls only retention
// reads: its windows are days, so an hour's staleness is nothing.
const pullEvery = time.Hour

// IsCachedRepo reports whether repo is under one of the cache's prefixes.
func (r *Registry) IsCachedRepo(repo string) bool {
	for _, p := range r.opts.CachePrefixes {
		if strings.HasPrefix(repo, p+"/") {
			return true
		}
	}
	return false
}

// CacheWrites is how many pulls TouchCached wrote.
func (r *Registry) CacheWrites() uint64 { return r.cacheWrites.Load() }

// TouchCached records that a manifest was pulled at now, for the cache's
// eviction (a cached repository) or for retention's keep-pulled-within
// (a repository whose rule has it). It writes at most once every
// touchEvery (pullEvery for retention alone) per manifest: it reads the
// row first in a read-only transaction, and a pull seen recently needs
// nothing more. A manifest that is gone (evicted meanwhile), or of a
// repository that needs no pulls, gets no row.
func (r *Registry) TouchCached(repo string, d digest.Digest, now time.Time) error {
	every := touchEvery
	if !r.IsCachedRepo(repo) {
		if !r.tracksPulls(repo) {
			return nil
		}
		every = pullEvery
	}
	// fresh: nothing to write, the pull is recorded already or the
	// manifest is gone. Both records are read in one batch.
	fresh := func(tx *kv.Tx) (bool, error) {
		if err := tx.Prefetch().Cached(repo, string(d)).Manifest(repo, string(d), false).Read(); err != nil {
			return false, err
		}
		row, ok, err := tx.Cached(repo, string(d))
		if err != nil || (ok && now.UnixNano()-row.Pulled < int64(every)) {
			return true, err
		}
		_, ok, err = tx.Manifest(repo, string(d))
		return !ok, err
	}
	var skip bool
	if err := r.db.View(func(tx *kv.Tx) error {
		var err error
		skip, err = fresh(tx)
		return err
	}); err != nil || skip {
		return err
	}
	var wrote bool
	_, err := r.update(func(tx *kv.Tx, _ *change) error {
		wrote = false
		if ok, err := fresh(tx); err != nil || ok {
			return err
		}
		row, _, err := tx.Cached(repo, string(d))
		if err != nil {
			return err
		}
		row.Pulled = now.UnixNano()
		wrote = true
		return tx.PutCached(repo, string(d), row)
	})
	if err == nil && wrote {
		r.cacheWrites.Add(1)
	}
	return err
}

// MarkFetched records that a cached manifest was fetched from upstream at
// now; a fill is also a pull. A manifest that is gone gets no row.
func (r *Registry) MarkFetched(repo string, d digest.Digest, now time.Time) error {
	if !r.IsCachedRepo(repo) {
		return fmt.Errorf("%w: %s", ErrNotCached, repo)
	}
	_, err := r.update(func(tx *kv.Tx, _ *change) error {
		row, _, err := tx.Cached(repo, string(d))
		if err != nil {
			return err
		}
		row.Fetched = now.UnixNano()
		row.Pulled = max(row.Pulled, row.Fetched)
		return r.putCachedTx(tx, repo, string(d), row)
	})
	return err
}

// putCachedTx writes a manifest's cache row if the manifest is there.
func (r *Registry) putCachedTx(tx *kv.Tx, repo, d string, row kv.Cached) error {
	if _, ok, err := tx.Manifest(repo, d); err != nil || !ok {
		return err
	}
	return tx.PutCached(repo, d, row)
}

// CheckedTag is what the upstream last answered for a cached tag and when;
// ok is false when it was never asked (or the tag moved since).
func (r *Registry) CheckedTag(repo, tag string) (checked time.Time, upstream digest.Digest, ok bool, err error) {
	err = r.db.View(func(tx *kv.Tx) error {
		row, found, err := tx.CachedTag(repo, tag)
		if err != nil || !found {
			ok = false
			return err
		}
		checked, upstream, ok = time.Unix(0, row.Checked), digest.Digest(row.Upstream), true
		return nil
	})
	return checked, upstream, ok, err
}

// SetCheckedTag records the upstream's answer for a tag at now. The tag
// must exist: a row names a tag, so it is written after the fill that
// made the tag.
func (r *Registry) SetCheckedTag(repo, tag string, upstream digest.Digest, now time.Time) error {
	if !r.IsCachedRepo(repo) {
		return fmt.Errorf("%w: %s", ErrNotCached, repo)
	}
	_, err := r.update(func(tx *kv.Tx, _ *change) error {
		if _, ok, err := tx.Tag(repo, tag); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: tag %s of %s", ErrManifestUnknown, tag, repo)
		}
		return tx.PutCachedTag(repo, tag, kv.CachedTag{Checked: now.UnixNano(), Upstream: string(upstream)})
	})
	return err
}

// deleteTagTx deletes a tag with its cache row.
func (r *Registry) deleteTagTx(tx *kv.Tx, repo, tag string) error {
	if err := tx.DeleteTag(repo, tag); err != nil {
		return err
	}
	return r.forgetTagTx(tx, repo, tag)
}

// forgetTagTx deletes a tag's cache row: the tag went or moved, and the
// upstream's answer no longer describes it. Only cached repositories have
// rows, and a delete elsewhere would be a write on the push path.
func (r *Registry) forgetTagTx(tx *kv.Tx, repo, tag string) error {
	if !r.IsCachedRepo(repo) {
		return nil
	}
	return tx.DeleteCachedTag(repo, tag)
}

// forgetManifestTx deletes a deleted manifest's cache row.
func (r *Registry) forgetManifestTx(tx *kv.Tx, c *change, repo, d string, size int64) error {
	if !r.IsCachedRepo(repo) {
		if r.tracksPulls(repo) {
			return tx.DeleteCached(repo, d) // retention's pull record
		}
		return nil
	}
	c.gone = append(c.gone, goneRecord{manifest: true, repo: repo, digest: d, size: size})
	return tx.DeleteCached(repo, d)
}

// pulledTx is an image's last pull: the latest cache row of its manifest
// and of the manifests it lists (one level: what an index lists).
func pulledTx(tx *kv.Tx, repo, d string, m kv.Manifest) (int64, error) {
	var latest int64
	for _, x := range append([]string{d}, m.Children...) {
		row, _, err := tx.Cached(repo, x)
		if err != nil {
			return 0, err
		}
		latest = max(latest, row.Pulled)
	}
	return latest, nil
}
