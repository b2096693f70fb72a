package kv

import "fmt"

// A tag's push time lives in a table of its own (tagpushed), written by
// PutTag and deleted by DeleteTag beside the tag, not in the tag's value:
// readers dereference a tag's value as a manifest key in one batch
// (Prefetch.TagTarget), so it stays the digest alone.

func encodeTime(v int64) []byte {
	out := make([]byte, 8)
	putU64(out, uint64(v))
	return out
}

// TagPushed is when a tag last moved (Unix ns); ok is false for a tag
// that has no row (none exists, or a store damaged).
func (t *Tx) TagPushed(repo, tag string) (int64, bool, error) {
	v, err := t.b.Get(tableTagPushed, repoKey(repo, tag))
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: tagpushed row of %d bytes", ErrCorrupt, len(v))
	}
	return int64(getU64(v)), true, nil
}

// ForEachTagPushed calls fn for every push time of a repository's tags,
// in tag order.
func (t *Tx) ForEachTagPushed(repo string, fn func(tag string, pushed int64) error) error {
	return t.scanPrefix(tableTagPushed, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		if len(v) != 8 {
			return false, fmt.Errorf("%w: tagpushed row of %d bytes", ErrCorrupt, len(v))
		}
		return true, fn(string(rest), int64(getU64(v)))
	})
}

// ForEachTagPushedRow calls fn for every push time of the store, for fsck.
func (t *Tx) ForEachTagPushedRow(fn func(repo, tag string, pushed int64) error) error {
	return t.b.Scan(tableTagPushed, nil, func(k, v []byte) (bool, error) {
		repo, tag, err := splitRepoKey(k)
		if err != nil {
			return false, err
		}
		if len(v) != 8 {
			return false, fmt.Errorf("%w: tagpushed row of %d bytes", ErrCorrupt, len(v))
		}
		return true, fn(repo, tag, int64(getU64(v)))
	})
}

// SetTagPushed writes a tag's push time alone: a tag pushed again with
// the content it names, which PutTag does not rewrite; repair of a tag
// that lost its row.
func (t *Tx) SetTagPushed(repo, tag string, pushed int64) error {
	return t.b.Put(tableTagPushed, repoKey(repo, tag), encodeTime(pushed))
}

// DeleteTagPushed removes a push time alone (repair: a row whose tag is
// gone).
func (t *Tx) DeleteTagPushed(repo, tag string) error {
	return t.b.Delete(tableTagPushed, repoKey(repo, tag))
}
