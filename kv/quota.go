package kv

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Quota namespaces. A namespace is a set of repositories charged together
// (what a quota rule's globs match); the caller names it and says which
// repository belongs to which (DB.SetQuotaNamespaces). Its usage is kept
// exact by the write methods of Tx, in the transaction of each change:
//
//   - bytes: the distinct blobs that manifests of the namespace reference
//     (a link with refs > 0), each once however many of its repositories
//     reference it, plus the bytes of its manifests;
//   - tags: its tags.
//
// Both are counters of table quotausage (Add: a delete reads nothing). A
// blob's share is found with table quotablobs, <namespace> 0x00 <digest>
// -> how many repositories of the namespace reference it: the first such
// repository adds the blob's size, the last one gone takes it back. That
// row is read only when a link's references go from 0 to more or back.

// QuotaUsage is what one namespace stores.
type QuotaUsage struct {
	Bytes int64 `json:"bytes"`
	Tags  int64 `json:"tags"`
}

// QuotaRules is what the namespaces were last configured as (meta
// quotarules): the usage tables were computed for Hash.
type QuotaRules struct {
	// Namespaces are the names of the namespaces, in order.
	Namespaces []string `json:"namespaces"`
	// Hash identifies the mapping of repositories to namespaces.
	Hash string `json:"hash"`
	// Rules are the caller's description of the rules (limits included),
	// kept for the operator commands; kv does not read them.
	Rules json.RawMessage `json:"rules,omitempty"`
}

// SetQuotaNamespaces sets how repositories map to namespaces (ns returns
// "" for a repository in none; nil: no namespaces, and the write methods
// keep no usage). It must be set before the first write and not changed
// while writes run.
func (db *DB) SetQuotaNamespaces(ns func(repo string) string) { db.quotaNS = ns }

// nsOf is the namespace of repo, "" for none; asked once per repository
// and transaction.
func (t *Tx) nsOf(repo string) string {
	if t.quotaNS == nil {
		return ""
	}
	if ns, ok := t.nsCache[repo]; ok {
		return ns
	}
	if t.nsCache == nil {
		t.nsCache = map[string]string{}
	}
	ns := t.quotaNS(repo)
	t.nsCache[repo] = ns
	return ns
}

// chargeQuota adds to a namespace's usage and to what this transaction
// changed of it.
func (t *Tx) chargeQuota(ns string, bytes, tags int64) error {
	if ns == "" || (bytes == 0 && tags == 0) {
		return nil
	}
	if err := t.b.Add(tableQuotaUsage, pairKey(ns, string(keyQuotaBytes)), bytes); err != nil {
		return err
	}
	if err := t.b.Add(tableQuotaUsage, pairKey(ns, string(keyQuotaTags)), tags); err != nil {
		return err
	}
	if t.quotaDelta == nil {
		t.quotaDelta = map[string]QuotaUsage{}
	}
	d := t.quotaDelta[ns]
	d.Bytes += bytes
	d.Tags += tags
	t.quotaDelta[ns] = d
	return nil
}

// chargeBlob counts one more (n = 1) or one fewer (n = -1) repository of
// repo's namespace that references the blob; the first adds its size to
// the namespace, the last takes it back.
func (t *Tx) chargeBlob(repo, digest string, size, n int64) error {
	ns := t.nsOf(repo)
	if ns == "" {
		return nil
	}
	k := pairKey(ns, digest)
	v, err := t.b.Get(tableQuotaBlobs, k)
	if err != nil {
		return err
	}
	var cur int64
	if len(v) == 8 {
		cur = int64(getU64(v))
	}
	next := cur + n
	switch {
	case next <= 0:
		if err := t.b.Delete(tableQuotaBlobs, k); err != nil {
			return err
		}
	default:
		buf := make([]byte, 8)
		putU64(buf, uint64(next))
		if err := t.b.Put(tableQuotaBlobs, k, buf); err != nil {
			return err
		}
	}
	switch {
	case cur <= 0 && next > 0:
		return t.chargeQuota(ns, size, 0)
	case cur > 0 && next <= 0:
		return t.chargeQuota(ns, -size, 0)
	}
	return nil
}

// QuotaNamespace is the namespace of repo ("" for none) and what this
// transaction has changed of its usage so far.
func (t *Tx) QuotaNamespace(repo string) (string, QuotaUsage) {
	ns := t.nsOf(repo)
	return ns, t.quotaDelta[ns]
}

// QuotaUsage reads a namespace's usage. In a write transaction on a
// serializable backend this read conflicts with every concurrent change
// of the namespace's usage: that is how two pushes for the last bytes of a
// quota cannot both see room (one of them runs again).
func (t *Tx) QuotaUsage(ns string) (QuotaUsage, error) {
	b, err := t.b.Counter(tableQuotaUsage, pairKey(ns, string(keyQuotaBytes)))
	if err != nil {
		return QuotaUsage{}, err
	}
	n, err := t.b.Counter(tableQuotaUsage, pairKey(ns, string(keyQuotaTags)))
	return QuotaUsage{Bytes: b, Tags: n}, err
}

// QuotaRules reads what the namespaces were last configured as (ok false:
// never).
func (t *Tx) QuotaRules() (QuotaRules, bool, error) {
	v, err := t.b.Get(tableMeta, keyQuotaRules)
	if err != nil || v == nil {
		return QuotaRules{}, false, err
	}
	var q QuotaRules
	if err := json.Unmarshal(v, &q); err != nil {
		return QuotaRules{}, false, fmt.Errorf("%w: quota rules: %v", ErrCorrupt, err)
	}
	return q, true, nil
}

// PutQuotaRules records the namespaces' configuration.
func (t *Tx) PutQuotaRules(q QuotaRules) error {
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return t.b.Put(tableMeta, keyQuotaRules, b)
}

// QuotaRecount is the namespaces' usage recomputed from the links,
// manifests and tags, with the rows of quotablobs it implies.
type QuotaRecount struct {
	Usage map[string]QuotaUsage
	// Blobs: namespace -> digest -> repositories of it referencing the blob.
	Blobs map[string]map[string]int64
}

// RecountQuotas recomputes every namespace's usage under the mapping ns:
// a scan of the repositories, and of the links, manifests and tags of
// those in a namespace, and a blob record read per distinct blob of each
// namespace. For fsck and for the rebuild after the mapping changed.
func (t *Tx) RecountQuotas(ns func(repo string) string) (QuotaRecount, error) {
	rc := QuotaRecount{Usage: map[string]QuotaUsage{}, Blobs: map[string]map[string]int64{}}
	if ns == nil {
		return rc, nil
	}
	repos, _, err := t.Repos("", -1)
	if err != nil {
		return rc, err
	}
	for _, repo := range repos {
		n := ns(repo)
		if n == "" {
			continue
		}
		u := rc.Usage[n]
		if rc.Blobs[n] == nil {
			rc.Blobs[n] = map[string]int64{}
		}
		err := t.ForEachLink(repo, func(d string, l Link) error {
			if l.Refs > 0 {
				rc.Blobs[n][d]++
			}
			return nil
		})
		if err != nil {
			return rc, err
		}
		err = t.ForEachManifest(repo, func(_ string, m Manifest) error {
			u.Bytes += m.Size
			return nil
		})
		if err != nil {
			return rc, err
		}
		err = t.ForEachTag(repo, func(string, string) error {
			u.Tags++
			return nil
		})
		if err != nil {
			return rc, err
		}
		rc.Usage[n] = u
	}
	for n, blobs := range rc.Blobs {
		u := rc.Usage[n]
		for d := range blobs {
			b, ok, err := t.Blob(d)
			if err != nil {
				return rc, err
			}
			if ok {
				u.Bytes += b.Size
			}
		}
		rc.Usage[n] = u
	}
	return rc, nil
}

// QuotaBlobs reads the rows of quotablobs: namespace -> digest -> count.
func (t *Tx) QuotaBlobs() (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	err := t.b.Scan(tableQuotaBlobs, nil, func(k, v []byte) (bool, error) {
		i := len(k) - 1
		for i >= 0 && k[i] != sep {
			i--
		}
		if i < 0 || len(v) != 8 {
			return false, fmt.Errorf("%w: quotablobs key %q", ErrCorrupt, k)
		}
		ns, d := string(k[:i]), string(k[i+1:])
		if out[ns] == nil {
			out[ns] = map[string]int64{}
		}
		out[ns][d] = int64(getU64(v))
		return true, nil
	})
	return out, err
}

// RebuildQuotas makes the usage tables what RecountQuotas says under ns:
// the counters of the namespaces named in old (the last configuration's)
// and of the new ones are zeroed by adding their negation, every row of
// quotablobs is replaced, and the recount is added. Running it again
// changes nothing. It returns the recount.
func (t *Tx) RebuildQuotas(old []string, ns func(repo string) string) (QuotaRecount, error) {
	rc, err := t.RecountQuotas(ns)
	if err != nil {
		return rc, err
	}
	names := map[string]bool{}
	for _, n := range old {
		names[n] = true
	}
	for n := range rc.Usage {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		cur, err := t.QuotaUsage(n)
		if err != nil {
			return rc, err
		}
		want := rc.Usage[n]
		if err := t.b.Add(tableQuotaUsage, pairKey(n, string(keyQuotaBytes)), want.Bytes-cur.Bytes); err != nil {
			return rc, err
		}
		if err := t.b.Add(tableQuotaUsage, pairKey(n, string(keyQuotaTags)), want.Tags-cur.Tags); err != nil {
			return rc, err
		}
	}
	keys, err := t.keysWithPrefix(tableQuotaBlobs, nil)
	if err != nil {
		return rc, err
	}
	for _, k := range keys {
		if err := t.b.Delete(tableQuotaBlobs, k); err != nil {
			return rc, err
		}
	}
	for n, blobs := range rc.Blobs {
		for d, c := range blobs {
			buf := make([]byte, 8)
			putU64(buf, uint64(c))
			if err := t.b.Put(tableQuotaBlobs, pairKey(n, d), buf); err != nil {
				return rc, err
			}
		}
	}
	return rc, nil
}

// QuotaBlob is what a change of repo's link to digest reads of quotablobs
// (nothing when repo is in no namespace).
func (p *Prefetch) QuotaBlob(repo, digest string) *Prefetch {
	if ns := p.t.nsOf(repo); ns != "" {
		p.add(tableQuotaBlobs, pairKey(ns, digest))
	}
	return p
}
