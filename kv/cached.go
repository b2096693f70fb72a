package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Cached is the bookkeeping of a manifest that a pull-through cache
// stored: when it was last pulled and when it was fetched from upstream
// (Unix ns; 0: never). Which repositories are cached ones is decided by
// the caller, not here.
type Cached struct {
	Pulled  int64
	Fetched int64
}

// CachedTag is what the upstream last answered for a tag of a cached
// repository, and when.
type CachedTag struct {
	Checked  int64  // Unix ns
	Upstream string // the digest the upstream named
}

func encodeCached(c Cached) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(c.Pulled))
	binary.BigEndian.PutUint64(v[8:], uint64(c.Fetched))
	return v
}

func decodeCached(v []byte) (Cached, error) {
	if len(v) != 16 {
		return Cached{}, fmt.Errorf("%w: cached row of %d bytes", ErrCorrupt, len(v))
	}
	return Cached{Pulled: int64(binary.BigEndian.Uint64(v)), Fetched: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

func encodeCachedTag(c CachedTag) []byte {
	v := make([]byte, 8, 8+len(c.Upstream))
	binary.BigEndian.PutUint64(v, uint64(c.Checked))
	return append(v, c.Upstream...)
}

func decodeCachedTag(v []byte) (CachedTag, error) {
	if len(v) < 8 {
		return CachedTag{}, fmt.Errorf("%w: cachedtags row of %d bytes", ErrCorrupt, len(v))
	}
	return CachedTag{Checked: int64(binary.BigEndian.Uint64(v)), Upstream: string(v[8:])}, nil
}

// splitRepoKey splits <repo> 0x00 <rest>.
func splitRepoKey(k []byte) (repo, rest string, err error) {
	i := bytes.IndexByte(k, sep)
	if i < 0 {
		return "", "", fmt.Errorf("%w: key %q without a repository", ErrCorrupt, k)
	}
	return string(k[:i]), string(k[i+1:]), nil
}

// Cached reads a manifest's cache row; ok is false when it has none.
func (t *Tx) Cached(repo, digest string) (Cached, bool, error) {
	v, err := t.b.Get(tableCached, repoKey(repo, digest))
	if err != nil || v == nil {
		return Cached{}, false, err
	}
	c, err := decodeCached(v)
	return c, err == nil, err
}

// PutCached writes a manifest's cache row.
func (t *Tx) PutCached(repo, digest string, c Cached) error {
	return t.b.Put(tableCached, repoKey(repo, digest), encodeCached(c))
}

// DeleteCached removes a manifest's cache row, if it has one.
func (t *Tx) DeleteCached(repo, digest string) error {
	return t.b.Delete(tableCached, repoKey(repo, digest))
}

// CachedIn calls fn for every cache row of a repository, ordered by
// digest.
func (t *Tx) CachedIn(repo string, fn func(digest string, c Cached) error) error {
	return t.scanPrefix(tableCached, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		c, err := decodeCached(v)
		if err != nil {
			return false, err
		}
		return true, fn(string(rest), c)
	})
}

// ForEachCached calls fn for every cache row of the store.
func (t *Tx) ForEachCached(fn func(repo, digest string, c Cached) error) error {
	return t.b.Scan(tableCached, nil, func(k, v []byte) (bool, error) {
		repo, d, err := splitRepoKey(k)
		if err != nil {
			return false, err
		}
		c, err := decodeCached(v)
		if err != nil {
			return false, err
		}
		return true, fn(repo, d, c)
	})
}

// CachedTag reads a tag's upstream check; ok is false when it has none.
func (t *Tx) CachedTag(repo, tag string) (CachedTag, bool, error) {
	v, err := t.b.Get(tableCachedTags, repoKey(repo, tag))
	if err != nil || v == nil {
		return CachedTag{}, false, err
	}
	c, err := decodeCachedTag(v)
	return c, err == nil, err
}

// PutCachedTag writes a tag's upstream check.
func (t *Tx) PutCachedTag(repo, tag string, c CachedTag) error {
	return t.b.Put(tableCachedTags, repoKey(repo, tag), encodeCachedTag(c))
}

// DeleteCachedTag removes a tag's upstream check, if it has one.
func (t *Tx) DeleteCachedTag(repo, tag string) error {
	return t.b.Delete(tableCachedTags, repoKey(repo, tag))
}

// ForEachCachedTag calls fn for every upstream check of the store.
func (t *Tx) ForEachCachedTag(fn func(repo, tag string, c CachedTag) error) error {
	return t.b.Scan(tableCachedTags, nil, func(k, v []byte) (bool, error) {
		repo, tag, err := splitRepoKey(k)
		if err != nil {
			return false, err
		}
		c, err := decodeCachedTag(v)
		if err != nil {
			return false, err
		}
		return true, fn(repo, tag, c)
	})
}
