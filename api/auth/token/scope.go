package token

import (
	"fmt"
	"slices"
	"strings"
)

// Limits on what a client may ask for at once; far beyond what any client
// sends (one scope per repository of a push, plus the source of a mount).
const (
	MaxScopes     = 64
	MaxScopeBytes = 8 << 10
)

// Resource types and the one registry-wide resource kvreg knows.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
	NameCatalog    = "catalog"
)

// Actions on a repository; "*" is the spec's "every action".
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"
)

// Access is one entry of a token's access claim: what may be done to one
// resource. Actions are sorted and distinct.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String gives the scope form, "repository:team/app:pull,push".
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// ParseScopes parses the scope parameters of a token request (each one a
// space-separated list of resourcetype[(class)]:name:action[,action]) into
// one Access per resource, merging repeated resources. Repository names are
// judged by validName; the only registry resource is registry:catalog:*.
// Anything else is refused whole with ErrBadScope rather than trimmed, so
// that a crafted scope cannot smuggle a second resource past a check.
func ParseScopes(params []string, validName func(string) bool) ([]Access, error) {
	total := 0
	for _, p := range params {
		total += len(p)
	}
	if total > MaxScopeBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrBadScope, MaxScopeBytes)
	}
	merged := map[[2]string][]string{}
	count := 0
	for _, p := range params {
		if p == "" {
			continue
		}
		for _, s := range strings.Split(p, " ") {
			count++
			if count > MaxScopes {
				return nil, fmt.Errorf("%w: over %d scopes", ErrBadScope, MaxScopes)
			}
			a, err := parseScope(s, validName)
			if err != nil {
				return nil, err
			}
			k := [2]string{a.Type, a.Name}
			merged[k] = append(merged[k], a.Actions...)
		}
	}
	out := make([]Access, 0, len(merged))
	for k, actions := range merged {
		out = append(out, Access{Type: k[0], Name: k[1], Actions: sortedActions(actions)})
	}
	slices.SortFunc(out, func(a, b Access) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// parseScope parses one resource scope. Names in kvreg hold no ':', so the
// type ends at the first colon and the actions begin after the last one;
// the name between is then judged whole.
func parseScope(s string, validName func(string) bool) (Access, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return Access{}, fmt.Errorf("%w: %q: control or non-ASCII character", ErrBadScope, s)
		}
	}
	first, last := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Access{}, fmt.Errorf("%w: %q: want type:name:actions", ErrBadScope, s)
	}
	typ, name := s[:first], s[first+1:last]
	var actions []string
	if s[last+1:] != "" {
		actions = strings.Split(s[last+1:], ",")
	}
	typ, err := resourceType(typ)
	if err != nil {
		return Access{}, fmt.Errorf("%w: %q: %v", ErrBadScope, s, err)
	}
	a := Access{Type: typ, Name: name, Actions: actions}
	if err := checkAccess(a, validName); err != nil {
		return Access{}, fmt.Errorf("%w: %q: %v", ErrBadScope, s, err)
	}
	a.Actions = sortedActions(a.Actions)
	return a, nil
}

// resourceType strips an optional class, "repository(plugin)", which kvreg
// does not distinguish.
func resourceType(t string) (string, error) {
	if i := strings.IndexByte(t, '('); i >= 0 {
		class := t[i+1:]
		if !strings.HasSuffix(class, ")") || !lowerAlnum(class[:len(class)-1]) {
			return "", fmt.Errorf("resource class malformed")
		}
		t = t[:i]
	}
	if !lowerAlnum(t) {
		return "", fmt.Errorf("resource type malformed")
	}
	return t, nil
}

func lowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

// checkAccess is the one judgement of an access entry, shared by the scope
// a client asks for and the access claim of a token being verified.
func checkAccess(a Access, validName func(string) bool) error {
	if len(a.Actions) == 0 {
		return fmt.Errorf("no actions")
	}
	switch a.Type {
	case TypeRepository:
		if !validName(a.Name) {
			return fmt.Errorf("invalid repository name")
		}
		for _, act := range a.Actions {
			switch act {
			case ActionPull, ActionPush, ActionDelete, ActionAll:
			default:
				return fmt.Errorf("unknown action %q", act)
			}
		}
	case TypeRegistry:
		if a.Name != NameCatalog {
			return fmt.Errorf("unknown registry resource %q", a.Name)
		}
		for _, act := range a.Actions {
			if act != ActionAll {
				return fmt.Errorf("unknown action %q", act)
			}
		}
	default:
		return fmt.Errorf("unknown resource type %q", a.Type)
	}
	return nil
}

func sortedActions(actions []string) []string {
	out := slices.Clone(actions)
	slices.Sort(out)
	return slices.Compact(out)
}
