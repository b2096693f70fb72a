package ui

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// ErrUnauthorized is what Options.Caller wraps when a request's
// credentials do not check out: the page answers 401 with a Basic
// challenge, so that the browser asks again.
var ErrUnauthorized = errors.New("ui: credentials refused")

// Caller is who sends a request and what they may do. The functions are
// the API's own checks, so the pages show what the API would serve.
type Caller struct {
	User string // "" for a caller without credentials
	// Authenticated: the request carried credentials and they are valid.
	Authenticated bool
	// MayPull reports whether the caller may pull repo; nil: everything.
	MayPull func(repo string) bool
	// MayDelete reports whether the caller may delete in repo; nil:
	// everything. Read-only mode and cached repositories are judged by
	// the ui on top of it.
	MayDelete func(repo string) bool
}

func (c Caller) mayPull(repo string) bool   { return c.MayPull == nil || c.MayPull(repo) }
func (c Caller) mayDelete(repo string) bool { return c.MayDelete == nil || c.MayDelete(repo) }

// Options is what the server supplies to the pages.
type Options struct {
	// Caller says who sends r; an error wrapping ErrUnauthorized answers
	// 401 with a Basic challenge, any other error 500. Nil: everyone is an
	// anonymous caller who may do everything (no authentication).
	Caller func(r *http.Request) (Caller, error)
	// Authentication says whether callers are checked at all: without it
	// /ui/login just goes back to the repositories.
	Authentication bool
	// ReadOnly hides every delete and refuses the delete form.
	ReadOnly bool
	// Remove deletes a target (REPO, REPO:TAG, REPO@DIGEST) as the server
	// deletes, for the request's caller (who the delete's event names),
	// counting what it frees; nil: the registry's Remove.
	Remove func(r *http.Request, target string) (*refcount.RemoveReport, error)
	// Now is the clock of the ages shown; nil: the registry's clock.
	Now    func() time.Time
	Logger *slog.Logger // nil: discard
}

// New returns the handler of every path under /ui/.
func New(reg *refcount.Registry, opts Options) http.Handler {
	if opts.Caller == nil {
		opts.Caller = func(*http.Request) (Caller, error) { return Caller{}, nil }
	}
	if opts.Remove == nil {
		opts.Remove = func(_ *http.Request, target string) (*refcount.RemoveReport, error) { return reg.Remove(target) }
	}
	if opts.Now == nil {
		opts.Now = reg.Clock
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{reg: reg, opts: opts, pages: mustParsePages(), cop: http.NewCrossOriginProtection()}
}
