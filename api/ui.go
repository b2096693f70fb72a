package api

import (
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/ui"
	"github.com/kvreg/kvreg/refcount"
)

// The web UI (package ui) is mounted at /ui/ when Config.UI is set, and /
// redirects there. Its callers are the API's: Basic credentials checked
// by authenticate, rights by may, so the pages show what /v2/ would serve
// the same caller, and deletes count what they free in the metrics as the
// operator's rm does.

// mountUI adds the UI's routes to the main router.
func (s *Server) mountUI(rt *httprouter.Router) {
	h := ui.New(s.reg, ui.Options{
		Caller:         s.uiCaller,
		Authentication: s.authOn(),
		ReadOnly:       s.cfg.ReadOnly,
		Remove:         s.uiRemove,
		Now:            s.reg.Clock,
		Logger:         s.cfg.Logger,
	})
	serve := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		info(r).route = "ui"
		h.ServeHTTP(w, r)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		rt.Handle(m, "/ui/*path", serve)
	}
	toUI := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		http.Redirect(w, r, ui.Prefix, http.StatusFound)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rt.Handle(m, "/", toUI)
		rt.Handle(m, "/ui", toUI)
	}
}

// uiCaller is who sends a UI request and what they may do: Basic
// credentials (the browser's prompt), judged by the access rules.
func (s *Server) uiCaller(r *http.Request) (ui.Caller, error) {
	c, aerr := s.authenticate(r)
	if aerr != nil {
		return ui.Caller{}, fmt.Errorf("%w: %s", ui.ErrUnauthorized, aerr.message)
	}
	info(r).caller = principal{Caller: c}
	if c.Anonymous() && !s.anonymousAllowed() {
		// Nothing is open to anonymous callers: ask, as /v2/ does.
		return ui.Caller{}, fmt.Errorf("%w: authentication required", ui.ErrUnauthorized)
	}
	if !s.authOn() {
		return ui.Caller{}, nil
	}
	p := principal{Caller: c}
	return ui.Caller{
		User:          c.User,
		Authenticated: !c.Anonymous(),
		MayPull:       func(repo string) bool { return s.may(p, repo, auth.Pull) },
		MayDelete: func(repo string) bool {
			return s.may(p, repo, auth.Delete) && !s.reg.IsCachedRepo(repo)
		},
	}, nil
}

// uiRemove deletes a target from the UI, counting the bytes it reclaims
// in the metrics as the operator's rm does.
func (s *Server) uiRemove(r *http.Request, target string) (*refcount.RemoveReport, error) {
	rep, err := s.reg.RemoveBy(s.origin(r), target)
	if err == nil {
		s.metrics.reclaimed.Add(float64(rep.ReclaimedBytes + rep.SweptBytes))
	}
	return rep, err
}
