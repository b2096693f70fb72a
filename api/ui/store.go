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
}

// store is the store's totals and its largest repositories (those the
// caller may pull only).
func (h *handler) store(q *request) {
	st, err := h.reg.Stats(0)
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	var visible []refcount.RepoStat
	n := 0
	for _, r := range st.Repositories { // largest first
		if !q.caller.mayPull(r.Name) {
			continue
		}
		n++
		if len(visible) < largestShown {
			visible = append(visible, r)
		}
	}
	st.Repositories = visible
	h.render(q, http.StatusOK, "store", storePage{StatsReport: st, Repos: n, Chart: barChart(visible)})
}
