package refcount

import (
	"sort"

	"github.com/kvreg/kvreg/kv"
)

// StoreOverview is Stats for the web UI's store page, which anyone who may
// pull can load as often as they like: the totals (with the figures that
// span repositories) and every repository's stored figures, largest
// first, but neither each repository's unique bytes (a scan of its links
// each) nor a listing of the blob store (on S3 a request per thousand
// objects): Repositories[i].UniqueBytes and BlobStore are zero.
func (r *Registry) StoreOverview() (*StatsReport, error) {
	rep := &StatsReport{DBBytes: r.db.Size()}
	err := r.db.View(func(tx *kv.Tx) error {
		rep.Repositories = []RepoStat{}
		var err error
		if rep.Totals, err = tx.Counters(); err != nil {
			return err
		}
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		for _, name := range repos {
			s, _, err := tx.RepoStoredStats(name)
			if err != nil {
				return err
			}
			rep.Repositories = append(rep.Repositories, RepoStat{Name: name, RepoStats: s, Cached: r.IsCachedRepo(name)})
		}
		if len(r.opts.CachePrefixes) == 0 {
			return nil
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
