package refcount

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// StatsReport is what `kvreg stats` shows. Totals come from counters kept in
// the same transactions as the records, except the figures that span
// repositories (shared and unreferenced bytes, each repository's unique
// bytes), which one read-only snapshot computes from the links: a scan of
// O(blobs + links) reads (see kv.Tx.Counters).
type StatsReport struct {
	Totals kv.Counters `json:"totals"`
	// DedupRatio is the bytes images reference (a blob counted once per
	// manifest using it) over the bytes stored.
	DedupRatio float64 `json:"dedupRatio"`
	DBBytes    int64   `json:"dbBytes"`
	// BlobStore is what the blob store holds, as stored (strays and
	// uploads included), beside the records' totals.
	BlobStore    driver.Usage `json:"blobStore"`
	Repositories []RepoStat   `json:"repositories"`
	// Cache is the pull-through cache's usage and budget, when the
	// registry has cached repositories.
	Cache *CacheStats `json:"cache,omitempty"`
	// Quotas are the quotas' usage against their limits.
	Quotas []QuotaStat `json:"quotas,omitempty"`
}

// CacheStats is the cache's line of the stats.
type CacheStats struct {
	CacheUsage
	MaxBytes int64 `json:"maxBytes"` // 0: no budget
}

// RepoStat is one repository's row.
type RepoStat struct {
	Name string `json:"name"`
	kv.RepoStats
	Cached bool `json:"cached,omitempty"` // under a cache prefix
}

// Stats returns the totals and the top repositories by bytes (top <= 0: all).
func (r *Registry) Stats(top int) (*StatsReport, error) {
	rep, err := r.overview(false)
	if err != nil {
		return nil, err
	}
	if rep.BlobStore, err = r.blobs.Usage(); err != nil {
		return nil, err
	}
	if top > 0 && len(rep.Repositories) > top {
		rep.Repositories = rep.Repositories[:top]
	}
	return rep, nil
}

// overview reads, in one snapshot, the totals, every repository's row
// (largest first), the cache's usage and, but for the stored figures
// alone, the quotas' usage. stored: each repository's stored figures,
// without its unique bytes (a scan of its links each).
func (r *Registry) overview(stored bool) (*StatsReport, error) {
	rep := &StatsReport{DBBytes: r.db.Size(), Repositories: []RepoStat{}}
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		if rep.Totals, err = tx.Counters(); err != nil {
			return err
		}
		if !stored {
			if rep.Quotas, err = r.quotaStatsTx(tx); err != nil {
				return err
			}
		}
		if rep.Repositories, err = r.repoRowsTx(tx, stored); err != nil || len(r.opts.CachePrefixes) == 0 {
			return err
		}
		s, err := r.cacheScanTx(tx)
		rep.Cache = &CacheStats{CacheUsage: s.usage, MaxBytes: r.opts.CacheMaxBytes}
		return err
	})
	if err != nil {
		return nil, err
	}
	if rep.Totals.BlobBytes > 0 {
		rep.DedupRatio = float64(rep.Totals.LogicalBytes) / float64(rep.Totals.BlobBytes)
	}
	sort.SliceStable(rep.Repositories, func(i, j int) bool {
		return rep.Repositories[i].Bytes > rep.Repositories[j].Bytes
	})
	return rep, nil
}

// Totals returns the store's totals. Without cross it reads only the
// stored counters (a few reads, for a metrics scrape) and leaves the
// figures computed across repositories zero; with it, it computes them as
// Stats does.
func (r *Registry) Totals(cross bool) (kv.Counters, error) {
	var c kv.Counters
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		if cross {
			c, err = tx.Counters()
		} else {
			c, err = tx.StoredCounters()
		}
		return err
	})
	return c, err
}

// repoRowsTx reads every repository's totals, in name order; stored: the
// stored figures alone (kv.Tx.RepoStoredStats).
func (r *Registry) repoRowsTx(tx *kv.Tx, stored bool) ([]RepoStat, error) {
	repos, _, err := tx.Repos("", -1)
	if err != nil {
		return nil, err
	}
	read := tx.RepoStats
	if stored {
		read = tx.RepoStoredStats
	}
	rows := make([]RepoStat, 0, len(repos))
	for _, name := range repos {
		s, _, err := read(name)
		if err != nil {
			return nil, err
		}
		rows = append(rows, RepoStat{Name: name, RepoStats: s, Cached: r.IsCachedRepo(name)})
	}
	return rows, nil
}

// ListReport is what `kvreg ls` shows: repositories, or one repository's tags.
type ListReport struct {
	Repositories []RepoStat `json:"repositories,omitempty"`
	Repository   string     `json:"repository,omitempty"`
	Tags         []TagRow   `json:"tags,omitempty"`
	Cached       bool       `json:"cached,omitempty"` // Repository is under a cache prefix
}

// TagRow describes a tag.
type TagRow struct {
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"mediaType"`
	Size      int64     `json:"size"` // the manifest, its children and their blobs, each once
	Created   time.Time `json:"created"`
	// Pulled is the image's last pull (its own and its children's cache
	// rows) in a cached repository; zero when none was recorded.
	Pulled time.Time `json:"pulled,omitzero"`
}

// List lists repositories (repo == "") or a repository's tags.
func (r *Registry) List(repo string) (*ListReport, error) {
	rep := &ListReport{Repository: repo}
	err := r.db.View(func(tx *kv.Tx) error {
		if repo == "" {
			var err error
			rep.Repositories, err = r.repoRowsTx(tx, false)
			return err
		}
		exists, err := tx.RepoExists(repo)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", ErrNameUnknown, repo)
		}
		rep.Tags = []TagRow{}
		rep.Cached = r.IsCachedRepo(repo)
		return tx.ForEachTag(repo, func(tag, d string) error {
			m, ok, err := tx.Manifest(repo, d)
			if err != nil || !ok {
				return err
			}
			size, err := imageSizeTx(tx, repo, d)
			if err != nil {
				return err
			}
			row := TagRow{
				Tag: tag, Digest: d, MediaType: m.MediaType,
				Size:    size,
				Created: time.Unix(0, m.Created).UTC(),
			}
			if rep.Cached {
				pulled, err := pulledTx(tx, repo, d, m)
				if err != nil {
					return err
				}
				if pulled != 0 {
					row.Pulled = time.Unix(0, pulled).UTC()
				}
			}
			rep.Tags = append(rep.Tags, row)
			return nil
		})
	})
	return rep, err
}

// imageSizeTx sums a manifest, its children and all their blobs, each once.
func imageSizeTx(tx *kv.Tx, repo, d string) (int64, error) {
	seen := map[string]bool{}
	var total int64
	var walk func(d string) error
	walk = func(d string) error {
		if seen[d] {
			return nil
		}
		seen[d] = true
		m, ok, err := tx.Manifest(repo, d)
		if err != nil || !ok {
			return err
		}
		total += m.Size
		for _, b := range m.Blobs {
			if !seen[b] {
				seen[b] = true
				rec, ok, err := tx.Blob(b)
				if err != nil {
					return err
				}
				if ok {
					total += rec.Size
				}
			}
		}
		for _, ch := range m.Children {
			if err := walk(ch); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk(d)
	return total, err
}

// RemoveReport says what `kvreg rm` removed, or with DryRun what it would
// remove: the figures of the delete's own transaction, rolled back.
type RemoveReport struct {
	Target string `json:"target"`
	DryRun bool   `json:"dryRun,omitempty"`
	// ReclaimedBytes is the bytes of the blobs freed (Blobs): what the
	// delete of the target gives back.
	ReclaimedBytes int64 `json:"reclaimedBytes"`
	// SweptBytes is what the same transaction freed on its way by ending
	// leases that had expired (a real delete only): not the target's.
	SweptBytes int64             `json:"sweptBytes,omitempty"`
	Tags       []string          `json:"tags"`      // REPO:TAG, in order
	Manifests  []RemovedManifest `json:"manifests"` // in digest order
	Blobs      []FreedBlob       `json:"blobs"`     // in digest order
}

// ParseTarget splits REPO, REPO:TAG or REPO@DIGEST.
func ParseTarget(s string) (repo, tag string, d digest.Digest, err error) {
	if i := strings.Index(s, "@"); i >= 0 {
		d, err = blobs.ParseDigest(s[i+1:])
		return s[:i], "", d, err
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:], "", nil
	}
	return s, "", "", nil
}

// Remove deletes a tag, a manifest with its tags, or a whole repository,
// and reclaims at once whatever nothing else holds.
func (r *Registry) Remove(target string) (*RemoveReport, error) {
	return r.remove(target, false)
}

// DeleteRepo deletes every tag, manifest, link and upload of a repository.
func (r *Registry) DeleteRepo(repo string) (int64, error) {
	c, err := r.update(withDeleteEvent(repo, "", "", r.deleteRepoFn(repo)))
	if err != nil {
		return 0, err
	}
	r.blobs.CancelRepo(repo)
	return c.Reclaimed, nil
}

// deleteRepoFn is DeleteRepo's transaction, which RemovePlan also runs.
func (r *Registry) deleteRepoFn(repo string) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		exists, err := tx.RepoExists(repo)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", ErrNameUnknown, repo)
		}
		if err := r.guardDeleteRepoTx(tx, repo); err != nil {
			return err
		}
		var tags []string
		if err := tx.ForEachTag(repo, func(t, _ string) error { tags = append(tags, t); return nil }); err != nil {
			return err
		}
		for _, t := range tags {
			d, ok, err := tx.Tag(repo, t)
			if err != nil {
				return err
			}
			if !ok {
				continue // went with a manifest released above
			}
			if err := r.deleteTagTx(tx, repo, t); err != nil {
				return err
			}
			c.removed.tag(repo, t)
			if err := r.releaseManifestTx(tx, c, repo, d); err != nil {
				return err
			}
		}
		var ds []string
		if err := tx.ForEachManifest(repo, func(d string, _ kv.Manifest) error { ds = append(ds, d); return nil }); err != nil {
			return err
		}
		for _, d := range ds {
			m, ok, err := tx.Manifest(repo, d)
			if err != nil {
				return err
			}
			if ok {
				if err := r.deleteManifestTx(tx, c, repo, d, m); err != nil {
					return err
				}
			}
		}
		var links []string
		if err := tx.ForEachLink(repo, func(d string, _ kv.Link) error { links = append(links, d); return nil }); err != nil {
			return err
		}
		for _, d := range links {
			l, ok, err := tx.Link(repo, d)
			if err != nil {
				return err
			}
			if ok {
				if err := r.deleteLinkTx(tx, c, repo, d, l); err != nil {
					return err
				}
			}
		}
		return nil
	}
}
