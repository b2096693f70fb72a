package refcount

import (
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/manifest"
	"github.com/opencontainers/go-digest"
)

// PutManifestTx pushes a manifest under tags inside tx as PutManifest
// does, so that a benchmark can push many in one transaction.
func (r *Registry) PutManifestTx(tx *kv.Tx, c *Change, repo string, tags []string, contentType string, body []byte) (digest.Digest, error) {
	p, err := manifest.Parse(contentType, body)
	if err != nil {
		return "", err
	}
	d := digest.FromBytes(body)
	return d, r.putManifestTx(tx, c, repo, string(d), p, tags, body)
}

// SetUniqueBudget makes a page's read look at n links at most for unique
// bytes, until the returned function restores the budget.
func SetUniqueBudget(n int) (restore func()) {
	old := uniqueBudget
	uniqueBudget = n
	return func() { uniqueBudget = old }
}
