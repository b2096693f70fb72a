package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

type manifestPage struct {
	*refcount.ManifestView
	Pull        string // the pull command
	Image       *imageConfig
	ConfigNote  string // why the image config is not shown, when it is not
	Annotations []label
	Referrers   []referrerItem
	CanDelete   bool
	Now         time.Time
}

// referrerItem is a ReferrerNode as the tree shows it: annotations in
// order, the node's own referrers nested.
type referrerItem struct {
	refcount.ReferrerNode
	Repo        string
	Annotations []label
	Children    []referrerItem
}

func referrerItems(repo string, ns []refcount.ReferrerNode) []referrerItem {
	out := make([]referrerItem, 0, len(ns))
	for _, n := range ns {
		out = append(out, referrerItem{ReferrerNode: n, Repo: repo,
			Annotations: sortedPairs(n.Annotations), Children: referrerItems(repo, n.Referrers)})
	}
	return out
}

// manifest is one manifest's page.
func (h *handler) manifest(q *request, repo, reference string) {
	if repo == "" || !q.caller.mayPull(repo) {
		h.notFound(q)
		return
	}
	mv, err := h.reg.ManifestViewFor(repo, reference, q.caller.MayPull)
	if unknown(err) {
		h.notFound(q)
		return
	}
	if err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	if mv.Digest != reference {
		// A tag given after '@': the page of a digest is at its digest.
		http.Redirect(q.w, q.r, repoURL(repo)+"@"+mv.Digest, http.StatusFound)
		return
	}
	p := manifestPage{
		ManifestView: mv, Pull: "docker pull " + q.r.Host + "/" + repo + "@" + mv.Digest,
		Annotations: sortedPairs(mv.Annotations), Referrers: referrerItems(repo, mv.Referrers),
		CanDelete: h.canDelete(q.caller, repo), Now: h.opts.Now(),
	}
	if mv.Config != nil && isImageConfig(mv.Config.MediaType) {
		p.Image, err = readImageConfig(h.reg, repo, mv.Config.Digest)
		switch {
		case errors.Is(err, errConfigTooLarge):
			p.ConfigNote = "The image config is too large to show here."
		case unknown(err):
			p.ConfigNote = "The image config is not readable in this repository."
		case err != nil:
			h.opts.Logger.Warn("ui: reading an image config", "repo", repo, "digest", mv.Config.Digest, "err", err)
			p.ConfigNote = "The image config could not be read: " + err.Error()
		}
	}
	h.render(q, http.StatusOK, "manifest", p)
}
