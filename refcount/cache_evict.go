package refcount

import (
	"errors"

	"github.com/kvreg/kvreg/kv"
)

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
	if imm, err := r.holdsImmutableTx(tx, repo, d); err != nil {
		return err
	} else if imm {
		return errNotEvictable
	}
	if err := r.dropPinTx(tx, c, pinKey{kind: kv.LeaseManifest, repo: repo, digest: d}); err != nil {
		return err
	}
	return r.deleteManifestTx(tx, c, repo, d, m)
}
