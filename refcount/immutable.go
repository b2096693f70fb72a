package refcount

import (
	"fmt"

	"github.com/kvreg/kvreg/kv"
)

// Immutable tags (Options.Policies): once such a tag names a manifest,
// no write moves it (a push of other content, a retag) or deletes it (the
// tag, the manifest carrying it, the repository). The checks run inside
// the write transactions, before anything is changed, so a refusal
// leaves the store as it was. Pushing the same content again moves
// nothing and is no change.

// immutableErr says which tag, which rule and which digest it keeps.
func (r *Registry) immutableErr(repo, tag, d, action string) error {
	rule, _ := r.opts.Policies.ImmutableFor(repo, tag)
	return fmt.Errorf("%w: %s:%s keeps %s under the rule %s; it cannot be %s", ErrImmutable, repo, tag, d, rule, action)
}

// guardMoveTx refuses to move repo's tag from old to d when the tag is
// immutable; old is "" for a tag being made, which nothing protects yet.
func (r *Registry) guardMoveTx(repo, tag, old, d string) error {
	if old == "" || old == d || !r.opts.Policies.ImmutableTag(repo, tag) {
		return nil
	}
	return r.immutableErr(repo, tag, old, "pointed at "+d)
}

// guardDeleteTagsTx refuses to delete tags of repo (tags names them, or
// with tags nil every tag on manifest d) when one is immutable.
func (r *Registry) guardDeleteTagsTx(tx *kv.Tx, repo, d string, tags []string) error {
	if _, ok := r.opts.Policies.ImmutableRule(repo); !ok {
		return nil
	}
	if tags == nil {
		var err error
		if tags, err = tx.TagsOf(repo, d); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if !r.opts.Policies.ImmutableTag(repo, t) {
			continue
		}
		at := d
		if at == "" {
			var err error
			if at, _, err = tx.Tag(repo, t); err != nil {
				return err
			}
		}
		return r.immutableErr(repo, t, at, "deleted")
	}
	return nil
}

// guardDeleteRepoTx refuses to delete a repository holding an immutable
// tag.
func (r *Registry) guardDeleteRepoTx(tx *kv.Tx, repo string) error {
	if _, ok := r.opts.Policies.ImmutableRule(repo); !ok {
		return nil
	}
	var tags []string
	if err := tx.ForEachTag(repo, func(t, _ string) error { tags = append(tags, t); return nil }); err != nil {
		return err
	}
	return r.guardDeleteTagsTx(tx, repo, "", tags)
}

// holdsImmutableTx reports whether manifest d of repo carries an immutable
// tag (which eviction and retention leave alone).
func (r *Registry) holdsImmutableTx(tx *kv.Tx, repo, d string) (bool, error) {
	if _, ok := r.opts.Policies.ImmutableRule(repo); !ok {
		return false, nil
	}
	tags, err := tx.TagsOf(repo, d)
	if err != nil {
		return false, err
	}
	for _, t := range tags {
		if r.opts.Policies.ImmutableTag(repo, t) {
			return true, nil
		}
	}
	return false, nil
}
