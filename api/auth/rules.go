package auth

import (
	"fmt"
	"slices"
)

// Action is what a caller does to a repository.
type Action string

const (
	Pull   Action = "pull"   // read manifests, tags, blobs and referrers
	Push   Action = "push"   // upload blobs and manifests, mount into it
	Delete Action = "delete" // delete tags, manifests and blobs
)

// AllUsers in a rule's users stands for every authenticated user.
const AllUsers = "*"

// Rule grants actions on repositories matching any of Repos to the users
// and groups named, to every authenticated user ("*" in Users), and, with
// Anonymous, to everyone, callers without credentials included. Rules only
// grant: what no rule grants is refused.
type Rule struct {
	Repos     []string `yaml:"repos"`
	Users     []string `yaml:"users"`
	Groups    []string `yaml:"groups"`
	Anonymous bool     `yaml:"anonymous"`
	Actions   []Action `yaml:"actions"`
}

// Caller is who sends a request: a user name, or "" for anonymous.
type Caller struct {
	User string
}

// Anonymous reports whether the caller sent no credentials.
func (c Caller) Anonymous() bool { return c.User == "" }

// Access decides what callers may do.
type Access struct {
	rules    []Rule
	memberOf map[string][]string // user -> groups
	anon     bool                // some rule grants anonymous callers something
}

// NewAccess checks rules and groups (group name -> members). Users not in
// known (when known is not nil) are refused, to catch typos.
func NewAccess(rules []Rule, groups map[string][]string, known func(user string) bool) (*Access, error) {
	a := &Access{memberOf: map[string][]string{}}
	for g, members := range groups {
		for _, u := range members {
			if known != nil && !known(u) {
				return nil, fmt.Errorf("%w: group %q: user %q is not in the htpasswd file", ErrRule, g, u)
			}
			a.memberOf[u] = append(a.memberOf[u], g)
		}
	}
	for i, r := range rules {
		where := fmt.Sprintf("rule %d", i+1)
		if len(r.Repos) == 0 {
			return nil, fmt.Errorf("%w: %s: no repos", ErrRule, where)
		}
		for _, p := range r.Repos {
			if err := validPattern(p); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		if len(r.Actions) == 0 {
			return nil, fmt.Errorf("%w: %s: no actions", ErrRule, where)
		}
		for _, act := range r.Actions {
			if act != Pull && act != Push && act != Delete {
				return nil, fmt.Errorf("%w: %s: unknown action %q (pull, push, delete)", ErrRule, where, act)
			}
		}
		if len(r.Users) == 0 && len(r.Groups) == 0 && !r.Anonymous {
			return nil, fmt.Errorf("%w: %s: grants nobody (give users, groups or anonymous: true)", ErrRule, where)
		}
		for _, u := range r.Users {
			if u != AllUsers && known != nil && !known(u) {
				return nil, fmt.Errorf("%w: %s: user %q is not in the htpasswd file", ErrRule, where, u)
			}
		}
		for _, g := range r.Groups {
			if _, ok := groups[g]; !ok {
				return nil, fmt.Errorf("%w: %s: unknown group %q", ErrRule, where, g)
			}
		}
		a.anon = a.anon || r.Anonymous
	}
	a.rules = rules
	return a, nil
}

// AllowsAnonymous reports whether anonymous callers may do anything at all.
func (a *Access) AllowsAnonymous() bool { return a.anon }

// Allowed reports whether c may do act on repo.
func (a *Access) Allowed(c Caller, repo string, act Action) bool {
	for _, r := range a.rules {
		if !slices.Contains(r.Actions, act) || !a.covers(r, c) {
			continue
		}
		for _, p := range r.Repos {
			if match(p, repo) {
				return true
			}
		}
	}
	return false
}

// covers reports whether a rule names the caller.
func (a *Access) covers(r Rule, c Caller) bool {
	// What anonymous callers may do, every user may do: logging in never
	// takes a right away.
	if r.Anonymous {
		return true
	}
	if c.Anonymous() {
		return false
	}
	if slices.Contains(r.Users, AllUsers) || slices.Contains(r.Users, c.User) {
		return true
	}
	for _, g := range a.memberOf[c.User] {
		if slices.Contains(r.Groups, g) {
			return true
		}
	}
	return false
}
