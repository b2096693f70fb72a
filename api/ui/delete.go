package ui

import (
	"errors"
	"net/http"

	"github.com/kvreg/kvreg/refcount"
)

// The delete flow: GET /ui/delete?target= shows what the delete would
// remove and the exact bytes it would free (refcount.RemovePlan runs the
// delete's own transaction and rolls it back); its form POSTs the target
// back with the CSRF token, and the POST deletes and shows what was freed.
// Both check the caller's rights again; the POST checks the token and the
// request's origin first.

type confirmPage struct {
	*refcount.RemoveReport
	Repo, Back string
}

type deletedPage struct {
	*refcount.RemoveReport
	Repo string
}

// deletable parses a target and reports whether the caller may delete
// it; ok false has already answered.
func (h *handler) deletable(q *request, target string) (repo string, ok bool) {
	repo, _, _, err := refcount.ParseTarget(target)
	if err != nil || repo == "" || !q.caller.mayPull(repo) {
		h.notFound(q)
		return "", false
	}
	if !h.canDelete(q.caller, repo) {
		h.message(q, http.StatusForbidden, "Delete not allowed", "You may not delete here, the registry is read-only, or the repository is a pull-through cache's.")
		return "", false
	}
	return repo, true
}

func (h *handler) confirmDelete(q *request) {
	target := q.r.URL.Query().Get("target")
	repo, ok := h.deletable(q, target)
	if !ok {
		return
	}
	plan, err := h.reg.RemovePlan(target)
	if unknown(err) {
		h.notFound(q)
		return
	}
	if h.refused(q, err) {
		return
	}
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	back := repoURL(repo)
	if _, tag, d, _ := refcount.ParseTarget(target); d != "" {
		back += "@" + d.String()
	} else if tag != "" {
		back = repoURL(repo)
	}
	h.render(q, http.StatusOK, "confirm", confirmPage{RemoveReport: plan, Repo: repo, Back: back})
}

func (h *handler) delete(q *request) {
	if err := h.cop.Check(q.r); err != nil {
		h.message(q, http.StatusForbidden, "Refused", "A delete must come from this site's own form.")
		return
	}
	if !checkToken(q.r) {
		h.message(q, http.StatusForbidden, "Refused", "The form's security token is missing or does not match: reload the confirmation and try again.")
		return
	}
	target := q.r.PostFormValue("target")
	repo, ok := h.deletable(q, target)
	if !ok {
		return
	}
	rep, err := h.opts.Remove(q.r, target)
	if unknown(err) {
		h.notFound(q)
		return
	}
	if h.refused(q, err) {
		return
	}
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	h.opts.Logger.Info("ui delete", "user", q.caller.User, "target", target, "reclaimed_bytes", rep.ReclaimedBytes)
	h.render(q, http.StatusOK, "deleted", deletedPage{RemoveReport: rep, Repo: repo})
}

// refused answers a delete the store's rules refuse: an immutable tag
// (403) or a manifest an index still references (409), with the store's
// own words; it reports whether err was one of those.
func (h *handler) refused(q *request, err error) bool {
	switch {
	case errors.Is(err, refcount.ErrImmutable):
		h.message(q, http.StatusForbidden, "Delete refused", err.Error())
	case errors.Is(err, refcount.ErrInUse):
		h.message(q, http.StatusConflict, "Delete refused", err.Error())
	default:
		return false
	}
	return true
}
