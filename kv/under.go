package kv

import (
	"bytes"
	"fmt"
)

// The ...Under scans read the rows of every repository whose name starts
// with a prefix in one range scan of the table: the keys of those
// repositories are contiguous, since a name is followed by 0x00, which
// no name holds. A prefix ending in "/" (a namespace) matches the
// repositories under it, and no other. They serve what spans many
// repositories at once, such as a cache's usage, in a few reads.

// scanUnder calls fn with the repository and the rest of every key of
// table whose repository name starts with prefix.
func (t *Tx) scanUnder(table []byte, prefix string, fn func(repo string, rest, v []byte) error) error {
	return t.scanPrefix(table, []byte(prefix), func(tail, v []byte) (bool, error) {
		i := bytes.IndexByte(tail, sep)
		if i < 0 {
			return false, fmt.Errorf("%w: key of %s without a repository", ErrCorrupt, table)
		}
		return true, fn(prefix+string(tail[:i]), tail[i+1:], v)
	})
}

// ForEachLinkUnder calls fn for every link of the repositories whose name
// starts with prefix, ordered by repository and digest.
func (t *Tx) ForEachLinkUnder(prefix string, fn func(repo, digest string, l Link) error) error {
	return t.scanUnder(tableLinks, prefix, func(repo string, rest, v []byte) error {
		l, err := decodeLink(v)
		if err != nil {
			return err
		}
		return fn(repo, string(rest), l)
	})
}

// ForEachManifestUnder calls fn for every manifest of the repositories
// whose name starts with prefix.
func (t *Tx) ForEachManifestUnder(prefix string, fn func(repo, digest string, m Manifest) error) error {
	return t.scanUnder(tableManifests, prefix, func(repo string, rest, v []byte) error {
		m, err := decodeManifest(v)
		if err != nil {
			return err
		}
		return fn(repo, string(rest), m)
	})
}

// ForEachReferrerUnder calls fn for every referrers entry of the
// repositories whose name starts with prefix.
func (t *Tx) ForEachReferrerUnder(prefix string, fn func(repo, subject string, r Referrer) error) error {
	return t.scanUnder(tableReferrers, prefix, func(repo string, rest, v []byte) error {
		i := bytes.IndexByte(rest, sep)
		if i < 0 {
			return fmt.Errorf("%w: referrer key", ErrCorrupt)
		}
		return fn(repo, string(rest[:i]), Referrer{Digest: string(rest[i+1:]), Counted: len(v) == 1 && v[0] == 1})
	})
}

// ForEachCachedUnder calls fn for every cache row of the repositories
// whose name starts with prefix.
func (t *Tx) ForEachCachedUnder(prefix string, fn func(repo, digest string, c Cached) error) error {
	return t.scanUnder(tableCached, prefix, func(repo string, rest, v []byte) error {
		c, err := decodeCached(v)
		if err != nil {
			return err
		}
		return fn(repo, string(rest), c)
	})
}
