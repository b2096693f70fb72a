package ui

import (
	"net/http"
	"net/url"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

const tagsPerPage = 100

type repoPage struct {
	*refcount.TagPage
	CanDelete bool
	Pager     pager
	Now       time.Time
}

// repo is a repository's tags, a page at a time.
func (h *handler) repo(q *request, name string) {
	if name == "" || !q.caller.mayPull(name) {
		h.notFound(q)
		return
	}
	page := pageNumber(q.r.URL.Query())
	tp, err := h.reg.TagPage(name, refcount.TagQuery{Offset: (page - 1) * tagsPerPage, Limit: tagsPerPage})
	if unknown(err) {
		h.notFound(q)
		return
	}
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	h.render(q, http.StatusOK, "repo", repoPage{
		TagPage: tp, CanDelete: h.canDelete(q.caller, name), Now: h.opts.Now(),
		Pager: newPager(repoURL(name), url.Values{}, page, tagsPerPage, tp.Total),
	})
}

// tagRedirect sends /ui/r/REPO:TAG to the page of the digest it names.
func (h *handler) tagRedirect(q *request, repo, tag string) {
	if !q.caller.mayPull(repo) || tag == "" {
		h.notFound(q)
		return
	}
	mv, err := h.reg.ManifestView(repo, tag)
	if unknown(err) {
		h.notFound(q)
		return
	}
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	http.Redirect(q.w, q.r, repoURL(repo)+"@"+mv.Digest, http.StatusFound)
}

func repoURL(repo string) string { return Prefix + "r/" + repo }
