package auth

import (
	"fmt"
	"strings"
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

// match reports whether a repository name matches a pattern, in which *
// stands for any run of characters, slashes included ("team/*" covers
// team/app and team/app/sub; "*" covers everything), and ? for any one
// character. It runs in time linear in len(name) times the number of stars.
func match(pattern, name string) bool {
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
