package auth

import (
	"fmt"

	"github.com/kvreg/kvreg/refcount/policy"
)

// validPattern accepts what may stand in a repository pattern, as
// policies read it: the characters of repository names, and the
// wildcards * and ?.
func validPattern(p string) error {
	if fault := policy.RepoPatternFault(p); fault != "" {
		return fmt.Errorf("%w: %s", ErrRule, fault)
	}
	return nil
}

// match is policy.Match: access rules, retention, quotas and immutable
// tags read repository globs alike.
func match(pattern, name string) bool { return policy.Match(pattern, name) }
