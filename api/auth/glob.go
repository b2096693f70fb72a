package auth

import (
	"fmt"
	"strings"

	"github.com/kvreg/kvreg/refcount/policy"
)

// validPattern accepts what may stand in a repository pattern: the
// characters of repository names, and the wildcards * and ?.
func validPattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty repository pattern", ErrRule)
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune("._-/*?", r):
		default:
			return fmt.Errorf("%w: repository pattern %q: %q is not allowed (lowercase names, / and the wildcards * and ?)", ErrRule, p, r)
		}
	}
	return nil
}

// match is policy.Match: access rules, retention, quotas and immutable
// tags read repository globs alike.
func match(pattern, name string) bool { return policy.Match(pattern, name) }
