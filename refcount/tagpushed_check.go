package refcount

import (
	"github.com/kvreg/kvreg/kv"
)

// tagPushedFaultsTx lists the push-time rows whose tag is gone (orphans)
// and the tags that have no row (missing): PutTag and DeleteTag keep them
// in step, so either is damage. Retention reads a missing one as pushed
// at 0, the first to go.
func tagPushedFaultsTx(tx *kv.Tx) (orphans, missing [][2]string, err error) {
	err = tx.ForEachTagPushedRow(func(repo, tag string, _ int64) error {
		_, ok, err := tx.Tag(repo, tag)
		if err == nil && !ok {
			orphans = append(orphans, [2]string{repo, tag})
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	repos, _, err := tx.Repos("", -1)
	if err != nil {
		return nil, nil, err
	}
	for _, repo := range repos {
		err := tx.ForEachTag(repo, func(tag, _ string) error {
			_, ok, err := tx.TagPushed(repo, tag)
			if err == nil && !ok {
				missing = append(missing, [2]string{repo, tag})
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return orphans, missing, nil
}

// checkTagPushedTx reports the push-time rows out of step with the tags.
func (st *checkState) checkTagPushedTx(tx *kv.Tx) error {
	orphans, missing, err := tagPushedFaultsTx(tx)
	for _, o := range orphans {
		st.add(ProblemTagPushed, o[0]+":"+o[1], "push time of a tag that does not exist")
	}
	for _, m := range missing {
		st.add(ProblemTagPushed, m[0]+":"+m[1], "tag without a push time")
	}
	return err
}

// mendTagPushedTx deletes the orphan push times and gives a tag without
// one its manifest's Created, as the migration to schema 8 does (repair).
func mendTagPushedTx(tx *kv.Tx) error {
	orphans, missing, err := tagPushedFaultsTx(tx)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		if err := tx.DeleteTagPushed(o[0], o[1]); err != nil {
			return err
		}
	}
	for _, m := range missing {
		d, _, err := tx.Tag(m[0], m[1])
		if err != nil {
			return err
		}
		man, _, err := tx.Manifest(m[0], d)
		if err != nil {
			return err
		}
		if err := tx.SetTagPushed(m[0], m[1], man.Created); err != nil {
			return err
		}
	}
	return nil
}
