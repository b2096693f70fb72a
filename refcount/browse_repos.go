package refcount

import (
	"strings"
	"time"

	"github.com/kvreg/kvreg/kv"
)

// defaultRepoLimit is a repository page's length when the query sets none.
const defaultRepoLimit = 50

// Repositories returns a page of the repositories q selects, in name
// order. It filters and counts on the names alone, so that a page costs
// the name scan plus the details of its own rows.
func (r *Registry) Repositories(q RepoQuery) (*RepoPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultRepoLimit
	}
	offset := max(q.Offset, 0)
	needle := strings.ToLower(q.Contains)
	var page *RepoPage
	err := r.db.View(func(tx *kv.Tx) error {
		page = &RepoPage{Rows: []RepoRow{}}
		names, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		var rows []string
		for _, name := range names {
			if needle != "" && !strings.Contains(strings.ToLower(name), needle) {
				continue
			}
			if q.Visible != nil && !q.Visible(name) {
				continue
			}
			if page.Total >= offset && len(rows) < limit {
				rows = append(rows, name)
			}
			page.Total++
		}
		budget := int64(uniqueBudget)
		for _, name := range rows {
			row, err := r.repoRowTx(tx, name, &budget)
			if err != nil {
				return err
			}
			page.Rows = append(page.Rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// repoRowTx reads one repository's row of the list.
func (r *Registry) repoRowTx(tx *kv.Tx, name string, budget *int64) (RepoRow, error) {
	s, known, _, err := statsTx(tx, name, budget)
	if err != nil {
		return RepoRow{}, err
	}
	last, err := lastPushTx(tx, name)
	if err != nil {
		return RepoRow{}, err
	}
	return RepoRow{Name: name, RepoStats: s, LastPush: last, Cached: r.IsCachedRepo(name), UniqueUnknown: !known}, nil
}

// lastPushTx is the newest Created over a repository's manifests, zero
// when it has none.
func lastPushTx(tx *kv.Tx, repo string) (time.Time, error) {
	var newest int64
	err := tx.ForEachManifest(repo, func(_ string, m kv.Manifest) error {
		newest = max(newest, m.Created)
		return nil
	})
	if err != nil || newest == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, newest).UTC(), nil
}
