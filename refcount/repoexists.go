package refcount

import "github.com/kvreg/kvreg/kv"

// RepositoryExists reports whether repo holds anything (a tag, a manifest
// or a blob link): one read.
func (r *Registry) RepositoryExists(repo string) (bool, error) {
	var ok bool
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		ok, err = tx.RepoExists(repo)
		return err
	})
	return ok, err
}
