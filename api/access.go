package api

import (
	"net/http"

	"github.com/kvreg/kvreg/api/auth"
)

// Authentication is HTTP Basic against the htpasswd users (Config.Users);
// authorisation asks the access rules (Config.Access). Without users every
// caller may do everything, as anonymous.

// challenge is the WWW-Authenticate header of every 401. Docker, skopeo,
// crane, regctl and containerd answer it with Basic credentials.
const challenge = `Basic realm="kvreg"`

func unauthorized(format string, args ...any) *Error {
	e := apiErr(kUnauthorized, format, args...)
	e.header = http.Header{"Www-Authenticate": {challenge}}
	return e
}

// authenticate finds who the caller is. Credentials that do not check out
// are refused wherever they are sent, even where anonymous access would do,
// so that a client learns its password is wrong.
func (s *Server) authenticate(r *http.Request) (auth.Caller, *Error) {
	if s.cfg.Users == nil {
		return auth.Caller{}, nil
	}
	if r.Header.Get("Authorization") == "" {
		return auth.Caller{}, nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return auth.Caller{}, unauthorized("authentication required: HTTP Basic credentials")
	}
	if !s.cfg.Users.Check(user, pass) {
		return auth.Caller{}, unauthorized("authentication failed: wrong user name or password")
	}
	return auth.Caller{User: user}, nil
}

// authOn reports whether callers are checked at all.
func (s *Server) authOn() bool { return s.cfg.Users != nil }

// may reports whether the caller may do act on repo.
func (s *Server) may(c auth.Caller, repo string, act auth.Action) bool {
	if !s.authOn() {
		return true
	}
	return s.cfg.Access != nil && s.cfg.Access.Allowed(c, repo, act)
}

// refuse is the answer to a caller who lacks a right: 401 with the challenge
// for anonymous callers (credentials might help), 403 DENIED for users.
func refuse(c auth.Caller, what string) *Error {
	if c.Anonymous() {
		return unauthorized("authentication required to %s", what)
	}
	return apiErr(kDenied, "%s may not %s", c.User, what)
}

// anonymousAllowed reports whether a caller without credentials may go on
// at all; if not, everything under /v2/ answers 401.
func (s *Server) anonymousAllowed() bool {
	return !s.authOn() || (s.cfg.Access != nil && s.cfg.Access.AllowsAnonymous())
}

// action is the right a route and method need (ok false: none beyond being
// let in, as for /v2/ and _catalog, which filters).
func action(k routeKind, method string) (auth.Action, bool) {
	switch k {
	case routeBase, routeCatalog:
		return "", false
	case routeTags, routeReferrers:
		return auth.Pull, true
	case routeManifest, routeBlob:
		switch method {
		case http.MethodGet, http.MethodHead:
			return auth.Pull, true
		case http.MethodDelete:
			return auth.Delete, true
		}
		return auth.Push, true
	}
	// Uploads: starting, sending, checking and cancelling.
	return auth.Push, true
}

// authorize lets a request through or says why not. GET /v2/ is how
// `docker login` checks credentials, so it demands them whenever
// authentication is on.
func (s *Server) authorize(c auth.Caller, rt route, method string) *Error {
	if !s.authOn() {
		return nil
	}
	if rt.kind == routeBase && c.Anonymous() {
		return unauthorized("authentication required")
	}
	act, ok := action(rt.kind, method)
	if !ok {
		return nil
	}
	if !s.may(c, rt.name, act) {
		return refuse(c, string(act)+" "+rt.name)
	}
	return nil
}

// pullable is the mount predicate: the repositories the caller may read
// from.
func (s *Server) pullable(c auth.Caller) func(repo string) bool {
	if !s.authOn() {
		return nil
	}
	return func(repo string) bool { return s.may(c, repo, auth.Pull) }
}
