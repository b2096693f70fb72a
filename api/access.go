package api

import (
	"net/http"
	"strings"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
)

// Authentication is HTTP Basic against the htpasswd users (Config.Users);
// authorisation asks the access rules (Config.Access). Without users every
// caller may do everything, as anonymous. With Config.Tokens (token mode)
// a Bearer token says who the caller is and its access claim is all it may
// do (bearer.go); Basic credentials and anonymous callers are still judged
// by the rules.

// challenge is the WWW-Authenticate header of every 401 in Basic mode.
// Docker, skopeo, crane, regctl and containerd answer it with Basic
// credentials.
const challenge = `Basic realm="kvreg"`

func unauthorized(format string, args ...any) *Error {
	e := apiErr(kUnauthorized, format, args...)
	e.header = http.Header{"Www-Authenticate": {challenge}}
	return e
}

// principal is who sends a request and where its rights come from.
type principal struct {
	auth.Caller
	// tok is set when a Bearer token authenticated the request: its access
	// claim is then everything the caller may do.
	tok *token.Claims
	// own: tok is one of kvreg's own tokens for an htpasswd user, whose
	// catalog is listed by the user's rules.
	own bool
}

// authenticate finds who the caller is from Basic credentials. Credentials
// that do not check out are refused wherever they are sent, even where
// anonymous access would do, so that a client learns its password is wrong.
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
	wrong := false
	if aerr := s.guardedLogin(r, user, func() bool { wrong = !s.cfg.Users.Check(user, pass); return wrong }); aerr != nil {
		return auth.Caller{}, aerr
	}
	if wrong {
		return auth.Caller{}, unauthorized("authentication failed: wrong user name or password")
	}
	return auth.Caller{User: user}, nil
}

// authOn reports whether callers are checked at all.
func (s *Server) authOn() bool { return s.cfg.Users != nil }

// tokenMode reports whether /v2/ speaks the token flow.
func (s *Server) tokenMode() bool { return s.authOn() && s.tokens != nil }

// may reports whether the caller may do act on repo.
func (s *Server) may(p principal, repo string, act auth.Action) bool {
	if !s.authOn() {
		return true
	}
	if p.tok != nil {
		return granted(p.tok.Access, token.TypeRepository, repo, string(act))
	}
	return s.cfg.Access != nil && s.cfg.Access.Allowed(p.Caller, repo, act)
}

// granted reports whether an access claim allows act on a resource.
func granted(access []token.Access, typ, name, act string) bool {
	for _, a := range access {
		if a.Type != typ || a.Name != name {
			continue
		}
		for _, x := range a.Actions {
			if x == act || x == token.ActionAll {
				return true
			}
		}
	}
	return false
}

// refuse is the answer to a caller who lacks a right. In Basic mode: 401
// with the challenge for anonymous callers (credentials might help), 403
// DENIED for users. In token mode a Bearer caller gets 401 with
// error="insufficient_scope", as distribution answers, so that the client
// asks for a token of the scope the challenge names; Basic users still get
// 403.
func (s *Server) refuse(r *http.Request, p principal, scope, what string) *Error {
	if s.tokenMode() {
		switch {
		case p.tok != nil:
			return s.bearerChallenge(r, scope, "insufficient_scope", "the token does not grant %s", what)
		case p.Anonymous():
			return s.bearerChallenge(r, scope, "", "authentication required to %s", what)
		}
	}
	if p.Anonymous() {
		return unauthorized("authentication required to %s", what)
	}
	return apiErr(kDenied, "%s may not %s", p.User, what)
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

// scopeOf is the scope a challenge names for a route: what a client should
// ask the token endpoint for. A push asks for pull too, as docker does (it
// checks what exists before uploading).
func scopeOf(rt route, method string) string {
	if rt.kind == routeCatalog {
		return "registry:catalog:*"
	}
	act, ok := action(rt.kind, method)
	if !ok || rt.name == "" {
		return ""
	}
	actions := []string{string(act)}
	if act == auth.Push {
		actions = []string{string(auth.Pull), string(auth.Push)}
	}
	return "repository:" + rt.name + ":" + strings.Join(actions, ",")
}

// authorize lets a request through or says why not. GET /v2/ is how
// `docker login` checks credentials, so it demands them (a Basic user or a
// token, one granting nothing included) whenever authentication is on.
func (s *Server) authorize(r *http.Request, p principal, rt route) *Error {
	if !s.authOn() {
		return nil
	}
	if rt.kind == routeBase && p.Anonymous() && p.tok == nil {
		if s.tokenMode() {
			return s.bearerChallenge(r, "", "", "authentication required")
		}
		return unauthorized("authentication required")
	}
	if rt.kind == routeCatalog && s.tokenMode() && (p.tok != nil || p.Anonymous()) {
		// Listing the catalog takes the token grant only authenticated
		// users get; Basic users are filtered by their rules as ever.
		if p.tok == nil || !granted(p.tok.Access, token.TypeRegistry, token.NameCatalog, token.ActionAll) {
			return s.refuse(r, p, scopeOf(rt, r.Method), "list the catalog")
		}
		return nil
	}
	act, ok := action(rt.kind, r.Method)
	if !ok {
		return nil
	}
	if !s.may(p, rt.name, act) {
		return s.refuse(r, p, scopeOf(rt, r.Method), string(act)+" "+rt.name)
	}
	return nil
}

// pullable is the mount predicate: the repositories the caller may read
// from (with a token, those its grants let it pull).
func (s *Server) pullable(p principal) func(repo string) bool {
	if !s.authOn() {
		return nil
	}
	return func(repo string) bool { return s.may(p, repo, auth.Pull) }
}

// listable reports whether the catalog shows repo to the caller: what it
// may pull, and for kvreg's own token of an htpasswd user (whose access
// claim names only the repositories it asked for) what the user's rules
// let it pull.
func (s *Server) listable(p principal, repo string) bool {
	if s.may(p, repo, auth.Pull) {
		return true
	}
	return p.own && s.cfg.Access != nil && s.cfg.Access.Allowed(p.Caller, repo, auth.Pull)
}
