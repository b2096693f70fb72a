package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
)

// Mirror is an upstream registry whose content kvreg caches (a pull-through
// cache): local repositories <Prefix>/... hold what was pulled from it.
type Mirror struct {
	Prefix string // local repository names under it are this mirror's
	URL    string // the upstream's base URL: http(s)://host[:port]
	// Registry is the upstream's name as containerd's hosts.toml mirrors
	// send it (?ns=docker.io); the URL's host when empty.
	Registry           string
	Username, Password string        // sent only to the upstream's own token realm
	Recheck            time.Duration // how long a tag's answer is trusted (DefaultRecheck when 0)
	// Default also serves names that match no prefix and no local
	// repository, as dockerd's registry-mirrors asks (/v2/library/busybox/...).
	Default bool
}

// DefaultRecheck is how long a cached tag is served before the upstream
// is asked again.
const DefaultRecheck = 5 * time.Minute

// ErrMirror: a mirror's configuration cannot be used.
var ErrMirror = errors.New("mirror")

// mirrors are the configured mirrors, checked (CheckMirrors).
type mirrors []Mirror

// CheckMirrors validates mirrors and fills in their defaults: prefixes are
// repository names, none under another; URLs are http(s) with a host and
// no path beyond "/"; registry names are unique; at most one is Default.
func CheckMirrors(ms []Mirror) ([]Mirror, error) {
	out := make([]Mirror, len(ms))
	defaults := 0
	for i, m := range ms {
		if !validName(m.Prefix) {
			return nil, fmt.Errorf("%w %q: the prefix is not a repository name", ErrMirror, m.Prefix)
		}
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("%w %q: upstream %q: want http(s)://host[:port], no path, query or credentials", ErrMirror, m.Prefix, m.URL)
		}
		m.URL = u.Scheme + "://" + u.Host
		if m.Registry == "" {
			m.Registry = u.Hostname()
		}
		m.Registry = strings.ToLower(m.Registry)
		if m.Recheck == 0 {
			m.Recheck = DefaultRecheck
		}
		if m.Recheck < 0 {
			return nil, fmt.Errorf("%w %q: recheck %v is negative", ErrMirror, m.Prefix, m.Recheck)
		}
		if m.Default {
			defaults++
		}
		for _, o := range out[:i] {
			if o.Prefix == m.Prefix || strings.HasPrefix(m.Prefix, o.Prefix+"/") || strings.HasPrefix(o.Prefix, m.Prefix+"/") {
				return nil, fmt.Errorf("%w %q: its prefix overlaps mirror %q's", ErrMirror, m.Prefix, o.Prefix)
			}
			if o.Registry == m.Registry {
				return nil, fmt.Errorf("%w %q: registry name %q is mirror %q's too", ErrMirror, m.Prefix, m.Registry, o.Prefix)
			}
		}
		out[i] = m
	}
	if defaults > 1 {
		return nil, fmt.Errorf("%w: %d mirrors are the default; at most one may be", ErrMirror, defaults)
	}
	return out, nil
}

// mirrorRoute is where a request for a repository name goes: the mirror,
// the local repository that caches it, and the name upstream.
type mirrorRoute struct {
	m        *Mirror
	local    string
	upstream string
	// byDefault: the default mirror, for a name that matched no prefix;
	// a local repository of that name, if there is one, comes first.
	byDefault bool
}

// errUnknownNamespace: ?ns= names no configured mirror.
var errUnknownNamespace = errors.New("no mirror of that registry")

// route finds the mirror of a request for repository name, with the
// ?ns= of containerd's mirrors (empty: none): a namespace picks the
// mirror of that registry (an unknown one is errUnknownNamespace, never
// dialed); otherwise a name under a mirror's prefix is that mirror's; any
// other name is the default mirror's, if there is one. ok is false for a
// plain local repository.
func (ms mirrors) route(name, ns string) (mirrorRoute, bool, error) {
	if ns != "" {
		ns = strings.ToLower(ns)
		for i := range ms {
			if ms[i].Registry == ns {
				local := ms[i].Prefix + "/" + name
				if !validName(local) {
					return mirrorRoute{}, false, fmt.Errorf("%w: %q under %q is too long", errUnknownNamespace, name, ms[i].Prefix)
				}
				return mirrorRoute{m: &ms[i], local: local, upstream: name}, true, nil
			}
		}
		return mirrorRoute{}, false, fmt.Errorf("%w: %q", errUnknownNamespace, ns)
	}
	for i := range ms {
		if rest, ok := strings.CutPrefix(name, ms[i].Prefix+"/"); ok {
			return mirrorRoute{m: &ms[i], local: name, upstream: rest}, true, nil
		}
	}
	for i := range ms {
		if ms[i].Default {
			local := ms[i].Prefix + "/" + name
			if !validName(local) {
				return mirrorRoute{}, false, nil
			}
			return mirrorRoute{m: &ms[i], local: local, upstream: name, byDefault: true}, true, nil
		}
	}
	return mirrorRoute{}, false, nil
}

// routeMirror points a request at the cache of the mirror its name (or its
// ?ns=) routes to: rt.name becomes the cached repository and rt.mirror is
// set. Access rules have judged the name the client asked for. A name the
// default mirror would take stays local when a local repository has it,
// and a push to such a name makes a local one. Clients only read cached
// repositories: kvreg itself fills and evicts them.
func (s *Server) routeMirror(r *http.Request, rt route) (route, error) {
	if rt.kind == routeBase || rt.kind == routeCatalog {
		return rt, nil
	}
	mr, ok, err := s.mirrors.route(rt.name, r.URL.Query().Get("ns"))
	if err != nil {
		return rt, apiErr(kNameUnknown, "%v", err)
	}
	if !ok {
		return rt, nil
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if mr.byDefault {
		// A push there makes a local repository of that name.
		if !read {
			return rt, nil
		}
		local, err := s.reg.RepositoryExists(rt.name)
		if err != nil {
			return rt, err
		}
		if local {
			return rt, nil
		}
	}
	if !read {
		return rt, apiErr(kDenied, "%s is a cache of %s: it is filled by pulls, not pushed to or deleted from", mr.local, mr.m.URL)
	}
	if mr.local != rt.name && !s.mayReadCache(info(r).caller, mr.local) {
		// Reached by ?ns= or the default mirror: the rules of the cache
		// repository hold too, or its upstream's credentials would serve
		// whoever may pull the short name.
		return rt, apiErr(kDenied, "%s is served from %s, which the access rules do not let this caller pull", rt.name, mr.local)
	}
	rt.name, rt.mirror = mr.local, &mr
	return rt, nil
}

// mayReadCache reports whether the access rules let the caller pull the
// cache repository local: a user (by Basic credentials or kvreg's own
// token) by that user's rules, anyone else by the anonymous rules, unless
// a token grants local itself.
func (s *Server) mayReadCache(p principal, local string) bool {
	if !s.authOn() {
		return true
	}
	if p.tok != nil && granted(p.tok.Access, token.TypeRepository, local, string(auth.Pull)) {
		return true
	}
	c := p.Caller
	if p.tok != nil && !p.own {
		c = auth.Caller{}
	}
	return s.cfg.Access != nil && s.cfg.Access.Allowed(c, local, auth.Pull)
}
