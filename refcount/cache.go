package refcount

import (
	"errors"
	"fmt"
	"sort"
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

// TouchCached records that a cached manifest was pulled at now. It writes
// at most once every touchEvery per manifest: it reads the row first in a
// read-only transaction, and a pull seen recently needs nothing more. A
// manifest that is gone (evicted meanwhile), or of a repository that is
// not cached, gets no row.
func (r *Registry) TouchCached(repo string, d digest.Digest, now time.Time) error {
	if !r.IsCachedRepo(repo) {
		return nil
	}
	// fresh: nothing to write, the pull is recorded already or the
	// manifest is gone. Both records are read in one batch.
	fresh := func(tx *kv.Tx) (bool, error) {
		if err := tx.Prefetch().Cached(repo, string(d)).Manifest(repo, string(d), false).Read(); err != nil {
			return false, err
		}
		row, ok, err := tx.Cached(repo, string(d))
		if err != nil || (ok && now.UnixNano()-row.Pulled < int64(touchEvery)) {
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
		return nil
	}
	c.gone = append(c.gone, goneRecord{manifest: true, repo: repo, digest: d, size: size})
	return tx.DeleteCached(repo, d)
}

// CacheUsage is what the cache holds: Bytes are the distinct bytes of
// the blobs linked from cached repositories plus their manifests' bytes;
// Images are the evictable images (root manifests).
type CacheUsage struct {
	Bytes     int64 `json:"bytes"`
	Manifests int64 `json:"manifests"`
	Images    int64 `json:"images"`
}

// CacheUsage computes the cache's usage from one snapshot: one range
// scan per cache prefix of the cached repositories' links, manifests,
// referrers and cache rows, and the records of the blobs they link, read
// in batches (no counter is kept, so that fills write no shared row).
func (r *Registry) CacheUsage() (CacheUsage, error) {
	s, err := r.cacheScan()
	return s.usage, err
}

// cacheImage is an evictable image: a root manifest of a cached
// repository and its recency.
type cacheImage struct {
	repo, digest string
	pulled       int64 // the latest row or push of it and its children
}

// cacheScan is one snapshot's view of the cache, which EvictCache then
// keeps up to date with what its own deletes remove.
type cacheScan struct {
	usage    CacheUsage
	images   []cacheImage     // least recently pulled first
	blobSize map[string]int64 // blobs the cache links
	linkedBy map[string]int   // how many cached repositories link each
}

// forget subtracts what a delete of the cache's records removed.
func (s *cacheScan) forget(gone []goneRecord) {
	for _, g := range gone {
		if g.manifest {
			s.usage.Bytes -= g.size
			s.usage.Manifests--
			continue
		}
		if s.linkedBy[g.digest]--; s.linkedBy[g.digest] <= 0 {
			s.usage.Bytes -= s.blobSize[g.digest]
			delete(s.linkedBy, g.digest)
			delete(s.blobSize, g.digest)
		}
	}
}

func (r *Registry) cacheScan() (cacheScan, error) {
	var s cacheScan
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		s, err = r.cacheScanTx(tx)
		return err
	})
	return s, err
}

// scanBatch bounds the blob records one batched read asks for.
const scanBatch = 500

// cacheScanTx reads the cached repositories.
func (r *Registry) cacheScanTx(tx *kv.Tx) (cacheScan, error) {
	s := cacheScan{blobSize: map[string]int64{}, linkedBy: map[string]int{}}
	var order []string // blobs in first-seen order, for the batched reads
	for _, p := range r.cacheNamespaces() {
		if err := tx.ForEachLinkUnder(p, func(_, d string, _ kv.Link) error {
			if s.linkedBy[d]++; s.linkedBy[d] == 1 {
				order = append(order, d)
			}
			return nil
		}); err != nil {
			return s, err
		}
		images, err := imagesUnderTx(tx, p, &s.usage)
		if err != nil {
			return s, err
		}
		s.images = append(s.images, images...)
	}
	for i := 0; i < len(order); i += scanBatch {
		batch := order[i:min(i+scanBatch, len(order))]
		pf := tx.Prefetch()
		for _, d := range batch {
			pf.Blob(d)
		}
		if err := pf.Read(); err != nil {
			return s, err
		}
		for _, d := range batch {
			b, ok, err := tx.Blob(d)
			if err != nil {
				return s, err
			}
			if ok {
				s.blobSize[d] = b.Size
				s.usage.Bytes += b.Size
			}
		}
	}
	s.usage.Images = int64(len(s.images))
	sort.SliceStable(s.images, func(i, j int) bool { return s.images[i].pulled < s.images[j].pulled })
	return s, nil
}

// imagesUnderTx adds the manifests of the repositories under a namespace
// to u and returns their root manifests with their recency.
func imagesUnderTx(tx *kv.Tx, namespace string, u *CacheUsage) ([]cacheImage, error) {
	type key struct{ repo, digest string }
	mans := map[key]kv.Manifest{}
	var order []key
	held := map[key]bool{} // referenced by another manifest of its repository
	if err := tx.ForEachManifestUnder(namespace, func(repo, d string, m kv.Manifest) error {
		mans[key{repo, d}] = m
		order = append(order, key{repo, d})
		u.Manifests++
		u.Bytes += m.Size
		for _, ch := range m.Children {
			held[key{repo, ch}] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := tx.ForEachReferrerUnder(namespace, func(repo, _ string, ref kv.Referrer) error {
		if ref.Counted {
			held[key{repo, ref.Digest}] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	pulled := map[key]int64{}
	if err := tx.ForEachCachedUnder(namespace, func(repo, d string, c kv.Cached) error {
		pulled[key{repo, d}] = c.Pulled
		return nil
	}); err != nil {
		return nil, err
	}
	var out []cacheImage
	for _, k := range order {
		if held[k] {
			continue
		}
		// Recency: the latest pull of the manifest and those under it,
		// a push (the fill) counting as a pull, so that an image filled
		// just now is not the first to go before its row is written.
		seen := map[string]bool{}
		stack := []string{k.digest}
		var latest int64
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[x] {
				continue
			}
			seen[x] = true
			latest = max(latest, pulled[key{k.repo, x}], mans[key{k.repo, x}].Created)
			stack = append(stack, mans[key{k.repo, x}].Children...)
		}
		out = append(out, cacheImage{repo: k.repo, digest: k.digest, pulled: latest})
	}
	return out, nil
}

// cacheNamespaces are the prefixes with their "/", each repository under
// exactly one (a prefix inside another's namespace adds nothing).
func (r *Registry) cacheNamespaces() []string {
	ns := make([]string, 0, len(r.opts.CachePrefixes))
	for _, p := range r.opts.CachePrefixes {
		ns = append(ns, p+"/")
	}
	sort.Strings(ns)
	var out []string
	for _, n := range ns {
		if len(out) > 0 && strings.HasPrefix(n, out[len(out)-1]) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// EvictReport is what EvictCache did: the images it deleted (repo@digest,
// in order) and the blob bytes it freed.
type EvictReport struct {
	Images  int      `json:"images"`
	Freed   int64    `json:"freed"`
	Evicted []string `json:"evicted"`
}

// errNotEvictable: the image chosen became referenced, tagged anew or
// leased between the snapshot and the delete; the next snapshot decides.
var errNotEvictable = errors.New("image no longer evictable")

// EvictCache deletes the least recently pulled cached images while the
// cache's usage exceeds maxBytes, one image per transaction, through the
// cascade of DeleteManifest: its tags and cache rows go with it, and its
// blobs are freed at once unless another image, cached or pushed, still
// references them (their files are removed after each commit). An image
// is a root manifest of a cached repository, its recency the latest pull
// (cache row) or push of it and of the manifests under it; one with a live lease (a fill
// in flight pushed it and nothing references it yet) is not evictable. It
// stops when the usage fits or nothing evictable is left.
//
// It scans the cache once (see CacheUsage) and then subtracts what each of
// its deletes removed; once that says the usage fits, or an image it chose
// was changed by another writer, it scans again, so that what others wrote
// meanwhile is counted too. Calls in one process run one at a time;
// replicas evicting at once may each delete for the same excess.
func (r *Registry) EvictCache(maxBytes int64) (EvictReport, error) {
	// One at a time in this process: two evictions working from one
	// snapshot would each delete for the same excess.
	r.evictMu.Lock()
	defer r.evictMu.Unlock()
	rep := EvictReport{Evicted: []string{}}
	skipped := map[string]bool{}
	for {
		s, err := r.cacheScan()
		if err != nil {
			return rep, err
		}
		if s.usage.Bytes <= maxBytes {
			return rep, nil
		}
		progress := false
		for _, img := range s.images {
			if s.usage.Bytes <= maxBytes {
				break
			}
			name := img.repo + "@" + img.digest
			if skipped[name] {
				continue
			}
			c, err := r.update(func(tx *kv.Tx, c *change) error {
				return r.evictTx(tx, c, img.repo, img.digest)
			})
			if errors.Is(err, errNotEvictable) {
				// Someone else changed the cache: the estimate is stale.
				skipped[name] = true
				progress = true
				break
			}
			if err != nil {
				return rep, err
			}
			progress = true
			s.forget(c.gone)
			rep.Images++
			rep.Freed += c.Reclaimed
			rep.Evicted = append(rep.Evicted, name)
		}
		if !progress {
			return rep, nil
		}
	}
}

// evictTx deletes one image if it is still evictable: nothing but its
// tags holds it and no lease is live.
func (r *Registry) evictTx(tx *kv.Tx, c *change, repo, d string) error {
	m, ok, err := tx.Manifest(repo, d)
	if err != nil {
		return err
	}
	if !ok {
		return errNotEvictable
	}
	tags, err := tx.TagsOf(repo, d)
	if err != nil {
		return err
	}
	if m.Refs > uint64(len(tags)) || leaseLive(m.Lease, c.now) {
		return errNotEvictable
	}
	if err := r.dropPinTx(tx, c, pinKey{kind: kv.LeaseManifest, repo: repo, digest: d}); err != nil {
		return err
	}
	return r.deleteManifestTx(tx, c, repo, d, m)
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
