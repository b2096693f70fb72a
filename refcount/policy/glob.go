package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrRule: a rule that cannot be applied as written.
var ErrRule = errors.New("invalid policy rule")

// Match reports whether name matches pattern, in which * stands for any
// run of characters, slashes included ("team/*" covers team/app and
// team/app/sub; "*" covers everything), and ? for any one character. It
// runs in time linear in len(name) times the number of stars. Repository
// globs and tag globs share it.
func Match(pattern, name string) bool {
	p, n := 0, 0
	star, resume := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, n
			p++
		case star >= 0:
			// Let the last star take one more character.
			p = star + 1
			resume++
			n = resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// MatchAny reports whether name matches one of patterns.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// ValidRepoPattern accepts what may stand in a repository glob: the
// characters of repository names, and the wildcards * and ?.
func ValidRepoPattern(p string) error {
	if fault := RepoPatternFault(p); fault != "" {
		return fmt.Errorf("%w: %s", ErrRule, fault)
	}
	return nil
}

// RepoPatternFault says what keeps p from being a repository glob, "" if
// nothing does, for callers that wrap it in an error of their own.
func RepoPatternFault(p string) string {
	if p == "" {
		return "empty repository pattern"
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune("._-/*?", r):
		default:
			return fmt.Sprintf("repository pattern %q: %q is not allowed (lowercase names, / and the wildcards * and ?)", p, r)
		}
	}
	return ""
}

// ValidTagPattern accepts what may stand in a tag glob: the characters of
// tags (letters, digits, _ . -), and the wildcards * and ?.
func ValidTagPattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty tag pattern", ErrRule)
	}
	if len(p) > 128 {
		return fmt.Errorf("%w: tag pattern %q is longer than a tag may be", ErrRule, p)
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_.-*?", r):
		default:
			return fmt.Errorf("%w: tag pattern %q: %q is not allowed (letters, digits, _ . - and the wildcards * and ?)", ErrRule, p, r)
		}
	}
	return nil
}
