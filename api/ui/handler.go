package ui

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/kvreg/kvreg/refcount"
)

// Prefix is the path every page lives under.
const Prefix = "/ui/"

// csp allows the page's own stylesheet and script only: no inline script
// or style, no framing, forms posting back here alone.
const csp = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"

type handler struct {
	reg   *refcount.Registry
	opts  Options
	pages pages
	cop   *http.CrossOriginProtection
}

// request is one page's request: who asks, and the CSRF token of the forms
// it renders.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	caller Caller
	csrf   string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !strings.HasPrefix(path, Prefix) {
		path = Prefix // /ui itself
	}
	rest := strings.TrimPrefix(path, Prefix)
	if strings.HasPrefix(rest, "static/") {
		serveStatic(w, r, strings.TrimPrefix(rest, "static/"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	caller, err := h.opts.Caller(r)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			h.challenge(w, r)
			return
		}
		h.fail(w, r, err)
		return
	}
	q := &request{w: w, r: r, caller: caller, csrf: ensureToken(w, r)}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case rest == "" && get:
		h.repos(q)
	case strings.HasPrefix(rest, "r/") && get:
		h.repoOrManifest(q, strings.TrimPrefix(rest, "r/"))
	case rest == "store" && get:
		h.store(q)
	case rest == "delete" && get:
		h.confirmDelete(q)
	case rest == "delete" && r.Method == http.MethodPost:
		h.delete(q)
	case rest == "login" && get:
		h.login(q)
	case rest == "" || strings.HasPrefix(rest, "r/") || rest == "store" || rest == "login":
		hd.Set("Allow", "GET, HEAD")
		h.message(q, http.StatusMethodNotAllowed, "Method not allowed", "This page is only read.")
	default:
		h.notFound(q)
	}
}

// repoOrManifest takes /ui/r/REPO, /ui/r/REPO@DIGEST and /ui/r/REPO:TAG.
// Repository names hold neither '@' nor ':', so the first of them ends
// the name.
func (h *handler) repoOrManifest(q *request, ref string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		h.manifest(q, ref[:i], ref[i+1:])
		return
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		h.tagRedirect(q, ref[:i], ref[i+1:])
		return
	}
	h.repo(q, ref)
}

// canDelete reports whether the caller sees delete links in repo: the
// right to delete, a writable server, and a repository that is not a
// pull-through cache's (its content is the upstream's).
func (h *handler) canDelete(c Caller, repo string) bool {
	return !h.opts.ReadOnly && !h.reg.IsCachedRepo(repo) && c.mayPull(repo) && c.mayDelete(repo)
}

// unknown reports whether err says a repository, manifest or tag does not
// exist: a 404 page.
func unknown(err error) bool {
	return errors.Is(err, refcount.ErrNameUnknown) || errors.Is(err, refcount.ErrManifestUnknown) ||
		errors.Is(err, refcount.ErrBlobUnknown)
}

// render writes a page, rendered whole first so that a failure is a clean
// 500 rather than half a page.
func (h *handler) render(q *request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages.execute(&buf, name, pageData{Caller: q.caller, Auth: h.opts.Authentication, CSRF: q.csrf, Page: data}); err != nil {
		h.fail(q.w, q.r, err)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
}

type messagePage struct{ Title, Text string }

func (h *handler) message(q *request, status int, title, text string) {
	h.render(q, status, "message", messagePage{Title: title, Text: text})
}

// notFound is the answer to what does not exist and to what the caller
// may not pull alike, so that a page does not reveal a repository exists.
func (h *handler) notFound(q *request) {
	h.message(q, http.StatusNotFound, "Not found", "There is nothing here, or nothing you may see.")
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.opts.Logger.Error("ui page failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write([]byte("internal error\n"))
}

// challenge asks the browser for credentials (its Basic prompt is the
// login form).
func (h *handler) challenge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Www-Authenticate", `Basic realm="kvreg"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	if r.Method != http.MethodHead {
		w.Write([]byte("authentication required\n"))
	}
}

// login asks for credentials until valid ones come, then goes to the
// repositories.
func (h *handler) login(q *request) {
	if h.opts.Authentication && !q.caller.Authenticated {
		h.challenge(q.w, q.r)
		return
	}
	http.Redirect(q.w, q.r, Prefix, http.StatusSeeOther)
}
