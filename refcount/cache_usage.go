package refcount

import (
	"sort"
	"strings"

	"github.com/kvreg/kvreg/kv"
)

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
		if err := tx.ForEachLinkUnder(p, func(_, d string, l kv.Link) error {
			// Only what cached images reference counts: a blob held by
			// its upload's lease alone (a fill in progress, a blob pulled
			// by digest) is nothing eviction could free.
			if l.Refs == 0 {
				return nil
			}
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
