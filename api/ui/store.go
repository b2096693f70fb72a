package ui

import (
	"net/http"

	"github.com/kvreg/kvreg/refcount"
)

// largestShown is how many repositories the store's chart shows.
const largestShown = 10

type storePage struct {
	*refcount.StatsReport
	Repos int // repositories the caller may see
	Chart chart
	// Partial: the caller may not see every repository, so the page shows
	// the sums of the visible ones and none of the store-wide figures,
	// which would tell what the hidden ones hold.
	Partial bool
	Visible visibleSums
}

// visibleSums adds up the visible repositories' own figures: bytes are
// each repository's linked bytes, so a blob two of them link counts twice.
type visibleSums struct{ Tags, Manifests, Links, Bytes int64 }

// store is the store's totals and its largest repositories (those the
// caller may pull only).
func (h *handler) store(q *request) {
	st, err := h.reg.StoreOverview()
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	var visible []refcount.RepoStat
	var sum visibleSums
	n := 0
	for _, r := range st.Repositories { // largest first
		if !q.caller.mayPull(r.Name) {
			continue
		}
		n++
		sum.Tags += r.Tags
		sum.Manifests += r.Manifests
		sum.Links += r.Links
		sum.Bytes += r.Bytes
		if len(visible) < largestShown {
			visible = append(visible, r)
		}
	}
	partial := n < len(st.Repositories)
	st.Repositories = visible
	h.render(q, http.StatusOK, "store", storePage{StatsReport: st, Repos: n, Chart: barChart(visible), Partial: partial, Visible: sum})
}
