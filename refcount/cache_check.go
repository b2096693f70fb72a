package refcount

import "github.com/kvreg/kvreg/kv"

// orphanCacheRow is a cache row whose manifest or tag is gone.
type orphanCacheRow struct {
	repo, name string
	tag        bool // a cachedtags row (name is the tag); else a cached row (name is the digest)
}

func (o orphanCacheRow) object() string {
	if o.tag {
		return o.repo + ":" + o.name
	}
	return o.repo + "@" + o.name
}

// orphanCacheRowsTx lists the cache rows that name no manifest or tag:
// the cascade deletes a row with its record, so any is damage (or rows of
// a repository that stopped being cached while they stood).
func orphanCacheRowsTx(tx *kv.Tx) ([]orphanCacheRow, error) {
	var out []orphanCacheRow
	err := tx.ForEachCached(func(repo, d string, _ kv.Cached) error {
		_, ok, err := tx.Manifest(repo, d)
		if err == nil && !ok {
			out = append(out, orphanCacheRow{repo: repo, name: d})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = tx.ForEachCachedTag(func(repo, tag string, _ kv.CachedTag) error {
		_, ok, err := tx.Tag(repo, tag)
		if err == nil && !ok {
			out = append(out, orphanCacheRow{repo: repo, name: tag, tag: true})
		}
		return err
	})
	return out, err
}

// checkCacheRowsTx reports the orphan cache rows.
func (st *checkState) checkCacheRowsTx(tx *kv.Tx) error {
	orphans, err := orphanCacheRowsTx(tx)
	for _, o := range orphans {
		if o.tag {
			st.add(ProblemOrphanCacheRow, o.object(), "upstream check of a tag that does not exist")
		} else {
			st.add(ProblemOrphanCacheRow, o.object(), "pull record of a manifest that does not exist")
		}
	}
	return err
}

// removeOrphanCacheRowsTx deletes the orphan cache rows (repair).
func removeOrphanCacheRowsTx(tx *kv.Tx) error {
	orphans, err := orphanCacheRowsTx(tx)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		if o.tag {
			err = tx.DeleteCachedTag(o.repo, o.name)
		} else {
			err = tx.DeleteCached(o.repo, o.name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
