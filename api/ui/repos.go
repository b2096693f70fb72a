package ui

import (
	"net/url"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

const reposPerPage = 50

type reposPage struct {
	Query string
	Rows  []refcount.RepoRow
	Total int
	Pager pager
	Now   time.Time
}

// repos is the repository list: what the caller may pull, filtered by the
// search, a page at a time.
func (h *handler) repos(q *request) {
	v := q.r.URL.Query()
	search := v.Get("q")
	page := pageNumber(v)
	rp, err := h.reg.Repositories(refcount.RepoQuery{
		Contains: search, Offset: (page - 1) * reposPerPage, Limit: reposPerPage, Visible: q.caller.MayPull,
	})
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	h.render(q, 200, "repos", reposPage{
		Query: search, Rows: rp.Rows, Total: rp.Total, Now: h.opts.Now(),
		Pager: newPager(Prefix, url.Values{"q": {search}}, page, reposPerPage, rp.Total),
	})
}
