package upstream

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// What the client puts in a URL path is checked first, so that a name
// cannot reach another path of the upstream.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

const maxRepoName = 255

func checkRepo(repo string) error {
	if len(repo) > maxRepoName || !repoRE.MatchString(repo) {
		return fmt.Errorf("%w: repository name %q", ErrInvalid, repo)
	}
	return nil
}

// checkRef checks a tag or digest; a digest is returned parsed ("" for a
// tag).
func checkRef(ref string) (digest.Digest, error) {
	if strings.Contains(ref, ":") {
		d, err := digest.Parse(ref)
		if err != nil {
			return "", fmt.Errorf("%w: digest %q: %v", ErrInvalid, ref, err)
		}
		return d, nil
	}
	if !tagRE.MatchString(ref) {
		return "", fmt.Errorf("%w: tag %q", ErrInvalid, ref)
	}
	return "", nil
}
