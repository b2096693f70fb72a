package refcount

import "github.com/kvreg/kvreg/kv"

// uniqueBudget is how many links one page's read looks at to compute
// unique bytes. A repository's UniqueBytes costs two index reads per link
// it has (about 2.5µs each on bbolt), so a page of large repositories
// would take seconds; past the budget the figure is left unknown and the
// page stays within a few milliseconds.
var uniqueBudget = 5000

// statsTx reads a repository's totals, with UniqueBytes when its links fit
// in what is left of *budget (which it then spends); known reports
// whether UniqueBytes was computed.
func statsTx(tx *kv.Tx, repo string, budget *int64) (s kv.RepoStats, known, ok bool, err error) {
	s, ok, err = tx.RepoStoredStats(repo)
	if err != nil || !ok || s.Links > *budget {
		return s, false, ok, err
	}
	*budget -= s.Links
	s, ok, err = tx.RepoStats(repo)
	return s, ok, ok, err
}
