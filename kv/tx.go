package kv

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kvreg/kvreg/kv/backend"
)

// Tx is one transaction. Every value it returns is a copy that outlives it.
// Writes on a read-only Tx fail with ErrReadOnly. The callbacks of the
// ForEach methods may read through the Tx but must not write.
type Tx struct {
	b backend.Tx
	// earliestLease is the earliest expiry of the leases this transaction
	// put (0: none), so that the caller knows when a sweep is next due.
	earliestLease int64
	// quotaNS, nsCache and quotaDelta: the quota namespaces and what this
	// transaction changed of their usage (quota.go).
	quotaNS    func(repo string) string
	nsCache    map[string]string
	quotaDelta map[string]QuotaUsage
}

// EarliestLeasePut is the earliest expiry among the leases this
// transaction put, 0 if it put none.
func (t *Tx) EarliestLeasePut() int64 { return t.earliestLease }

// OnAbort has f called, once, as soon as the store knows that this attempt
// of an Update did not commit, before it backs off and runs the function
// again (backend.Aborter); not when the outcome is unknown. On a store
// that does not tell (bbolt, whose failed attempts run again at once),
// nothing: the function's next run, or Update's error, says it.
func (t *Tx) OnAbort(f func()) {
	if a, ok := t.b.(backend.Aborter); ok {
		a.OnAbort(f)
	}
}

// repoKey is <repo> 0x00 <rest>, the key of a per-repository table.
func repoKey(repo, rest string) []byte {
	k := make([]byte, 0, len(repo)+1+len(rest))
	k = append(k, repo...)
	k = append(k, sep)
	return append(k, rest...)
}

// scanPrefix calls fn with the rest of every key of table that starts with
// prefix, in byte order, until fn returns false.
// Through a backend.RangeScanner when the transaction is one, so that no
// key past the prefix is read.
func (t *Tx) scanPrefix(table, prefix []byte, fn func(rest, v []byte) (bool, error)) error {
	if rs, ok := t.b.(backend.RangeScanner); ok {
		return rs.ScanRange(table, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
			return fn(k[len(prefix):], v)
		})
	}
	return t.b.Scan(table, prefix, func(k, v []byte) (bool, error) {
		if !bytes.HasPrefix(k, prefix) {
			return false, nil
		}
		return fn(k[len(prefix):], v)
	})
}

// prefixEnd is the least key greater than every key starting with prefix,
// or nil when there is none.
func prefixEnd(prefix []byte) []byte {
	end := clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// hasPrefix reports whether table holds a key starting with prefix.
func (t *Tx) hasPrefix(table, prefix []byte) (bool, error) {
	found := false
	err := t.scanPrefix(table, prefix, func(_, _ []byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

// keysWithPrefix returns the full keys of table that start with prefix.
func (t *Tx) keysWithPrefix(table, prefix []byte) ([][]byte, error) {
	var out [][]byte
	err := t.scanPrefix(table, prefix, func(rest, _ []byte) (bool, error) {
		out = append(out, append(clone(prefix), rest...))
		return true, nil
	})
	return out, err
}

// createRepo records a repository if it is not recorded yet. Its row holds
// nothing: it exists while the repository does (its totals are counters).
func (t *Tx) createRepo(repo string) error {
	v, err := t.b.Get(tableRepos, []byte(repo))
	if err != nil || v != nil {
		return err
	}
	if err := t.b.Put(tableRepos, []byte(repo), []byte{}); err != nil {
		return err
	}
	return t.addCounter(keyCtrRepos, 1)
}

// pruneRepo removes a repository that has no manifests, tags or links
// left, with whatever its other tables still hold.
func (t *Tx) pruneRepo(repo string) error {
	ok, err := t.RepoExists(repo)
	if err != nil || !ok {
		return err
	}
	prefix := repoKey(repo, "")
	for _, table := range repoContentTables {
		if found, err := t.hasPrefix(table, prefix); found || err != nil {
			return err
		}
	}
	for _, table := range repoIndexTables {
		keys, err := t.keysWithPrefix(table, prefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := t.b.Delete(table, k); err != nil {
				return err
			}
		}
	}
	if err := t.addCounter(keyCtrRepos, -1); err != nil {
		return err
	}
	return t.b.Delete(tableRepos, []byte(repo))
}

// clone copies b, keeping absent (nil) and present but empty apart.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// ---- blobs ----

// Blob reads a blob record.
func (t *Tx) Blob(digest string) (Blob, bool, error) {
	v, err := t.b.Get(tableBlobs, []byte(digest))
	if err != nil || v == nil {
		return Blob{}, false, err
	}
	b, err := decodeBlob(v)
	return b, err == nil, err
}

// CreateBlob records a blob (b.Size, b.Created: Unix ns of this commit,
// b.Location), if it is not recorded yet, and clears any tombstone of the
// digest. A new blob has no links.
func (t *Tx) CreateBlob(digest string, b Blob) error {
	if len(b.Location) > maxLocation {
		b.Location = "" // unknown: read from the store when wanted
	}
	if _, ok, err := t.Blob(digest); ok || err != nil {
		return err
	}
	if err := t.b.Delete(tableTombstones, []byte(digest)); err != nil {
		return err
	}
	for _, c := range []struct {
		k []byte
		d int64
	}{{keyCtrBlobs, 1}, {keyCtrBlobBytes, b.Size}} {
		if err := t.addCounter(c.k, c.d); err != nil {
			return err
		}
	}
	return t.b.Put(tableBlobs, []byte(digest), encodeBlob(b))
}

// RewriteBlob overwrites a blob record as is, counters untouched (repair).
func (t *Tx) RewriteBlob(digest string, b Blob) error {
	return t.b.Put(tableBlobs, []byte(digest), encodeBlob(b))
}

// DeleteBlob removes a blob record and leaves a tombstone so that its file
// is removed even if the process dies before it gets to it.
func (t *Tx) DeleteBlob(digest string) error {
	b, ok, err := t.Blob(digest)
	if err != nil || !ok {
		return err
	}
	// Its links are gone (the caller removed them), and with them their
	// share of logicalBytes.
	if err := t.addCounter(keyCtrBlobs, -1); err != nil {
		return err
	}
	if err := t.addCounter(keyCtrBlobBytes, -b.Size); err != nil {
		return err
	}
	if err := t.b.Delete(tableBlobs, []byte(digest)); err != nil {
		return err
	}
	// The tombstone carries a generation of its own, so that the removal of
	// an earlier deletion's file never clears it. Only equality matters: a
	// random 64-bit value made in this transaction is new with certainty
	// for all practical purposes, on any store.
	// The record's location goes with it, so that the removal finds the
	// bytes without asking the store.
	v := make([]byte, 8, 8+len(b.Location))
	putU64(v, rand.Uint64())
	return t.b.Put(tableTombstones, []byte(digest), append(v, b.Location...))
}

// ForEachBlob calls fn for every blob record in digest order.
func (t *Tx) ForEachBlob(fn func(digest string, b Blob) error) error {
	return t.b.Scan(tableBlobs, nil, func(k, v []byte) (bool, error) {
		b, err := decodeBlob(v)
		if err != nil {
			return false, err
		}
		return true, fn(string(k), b)
	})
}

// Tombstones lists digests whose files are to be removed.
func (t *Tx) Tombstones() ([]string, error) {
	var out []string
	err := t.b.Scan(tableTombstones, nil, func(k, _ []byte) (bool, error) {
		out = append(out, string(k))
		return true, nil
	})
	return out, err
}

// Tombstone reads a digest's tombstone.
func (t *Tx) Tombstone(digest string) (Tombstone, bool, error) {
	v, err := t.b.Get(tableTombstones, []byte(digest))
	if err != nil || v == nil {
		return Tombstone{}, false, err
	}
	if len(v) < 8 {
		return Tombstone{}, true, nil // version 1's empty value
	}
	return Tombstone{Gen: getU64(v), Location: string(v[8:])}, true, nil
}

// ClaimTombstone makes the transaction a writer of digest's tombstone: it
// writes the tombstone back as it is, or, if there is none, writes one and
// deletes it again, so that none is left; it returns the tombstone and
// whether there was one. A remover of a blob's bytes claims the
// tombstone in the transaction that finds the blob unrecorded: a
// transaction that records the blob (CreateBlob reads the record and
// deletes the tombstone) and has not committed by then can no longer
// commit (on PostgreSQL, SERIALIZABLE fails it, however late its COMMIT
// arrives), so that bytes are never removed under a record that lands
// after the check.
func (t *Tx) ClaimTombstone(digest string) (tb Tombstone, ok bool, err error) {
	tb, ok, err = t.Tombstone(digest)
	if err != nil {
		return Tombstone{}, false, err
	}
	v := make([]byte, 8, 8+len(tb.Location))
	putU64(v, tb.Gen)
	if err := t.b.Put(tableTombstones, []byte(digest), append(v, tb.Location...)); err != nil || ok {
		return tb, ok, err
	}
	return tb, false, t.b.Delete(tableTombstones, []byte(digest))
}

// DeleteTombstone forgets a tombstone once its file is gone, unless a later
// deletion has written a newer one since (gen is the one that was seen).
func (t *Tx) DeleteTombstone(digest string, gen uint64) error {
	cur, ok, err := t.Tombstone(digest)
	if err != nil || !ok || cur.Gen != gen {
		return err
	}
	return t.b.Delete(tableTombstones, []byte(digest))
}

// ---- leases ----

// PutLease adds an entry to the expiry index.
func (t *Tx) PutLease(l Lease) error {
	k := leaseKey(l)
	if v, err := t.b.Get(tableLeases, k); v != nil || err != nil {
		return err
	}
	if err := t.addCounter(keyCtrLeases, 1); err != nil {
		return err
	}
	if t.earliestLease == 0 || l.Expiry < t.earliestLease {
		t.earliestLease = l.Expiry
	}
	return t.b.Put(tableLeases, k, []byte{})
}

// PutNewLease is PutLease of an entry the caller knows is not there: the
// hold it sets named no lease or another expiry, and the index holds
// exactly what the holds name. It reads nothing: every lease put sorts at
// the end of the index (its expiry is the writer's clock plus a grace),
// and on PostgreSQL concurrent writers that each read their absent entry
// there before putting it conflict with one another over that read,
// whatever objects they hold.
func (t *Tx) PutNewLease(l Lease) error {
	if err := t.addCounter(keyCtrLeases, 1); err != nil {
		return err
	}
	if t.earliestLease == 0 || l.Expiry < t.earliestLease {
		t.earliestLease = l.Expiry
	}
	return t.b.Put(tableLeases, leaseKey(l), []byte{})
}

// DeleteLease removes an entry from the expiry index.
func (t *Tx) DeleteLease(l Lease) error {
	k := leaseKey(l)
	if v, err := t.b.Get(tableLeases, k); v == nil || err != nil {
		return err
	}
	if err := t.addCounter(keyCtrLeases, -1); err != nil {
		return err
	}
	return t.b.Delete(tableLeases, k)
}

// ExpiredLeases returns up to max leases whose expiry is at or before now,
// earliest first. It reads only those entries.
func (t *Tx) ExpiredLeases(now int64, max int) ([]Lease, error) {
	var out []Lease
	if max <= 0 {
		return out, nil
	}
	each := func(k, _ []byte) (bool, error) {
		l, err := parseLeaseKey(k)
		if err != nil {
			return false, err
		}
		if l.Expiry > now {
			return false, nil
		}
		out = append(out, l)
		return len(out) < max, nil
	}
	// Bounded by the expiry where a backend can, so that the sweep in every
	// write reads no lease that a concurrent push has just taken.
	if rs, ok := t.b.(backend.RangeScanner); ok && now < math.MaxInt64 {
		to := make([]byte, 8)
		putU64(to, uint64(now+1))
		err := rs.ScanRange(tableLeases, nil, to, each)
		return out, err
	}
	err := t.b.Scan(tableLeases, nil, each)
	return out, err
}

// ForEachLease calls fn for every lease in expiry order.
func (t *Tx) ForEachLease(fn func(Lease) error) error {
	return t.b.Scan(tableLeases, nil, func(k, _ []byte) (bool, error) {
		l, err := parseLeaseKey(k)
		if err != nil {
			return false, err
		}
		return true, fn(l)
	})
}

// ---- repositories ----

// RepoExists reports whether the repository has anything in it.
func (t *Tx) RepoExists(repo string) (bool, error) {
	v, err := t.b.Get(tableRepos, []byte(repo))
	return v != nil, err
}

// Repos lists up to n repository names after last, in lexical order, and
// whether more follow. n < 0 means no limit.
func (t *Tx) Repos(last string, n int) ([]string, bool, error) {
	return t.listKeys(tableRepos, nil, last, n)
}

// listKeys lists up to n keys of table under prefix (without it) after
// last, and whether more follow.
func (t *Tx) listKeys(table, prefix []byte, last string, n int) ([]string, bool, error) {
	out, more := []string{}, false
	from := append(clone(prefix), last...)
	err := t.b.Scan(table, from, func(k, _ []byte) (bool, error) {
		if !bytes.HasPrefix(k, prefix) {
			return false, nil
		}
		rest := string(k[len(prefix):])
		if last != "" && rest == last {
			return true, nil
		}
		if n >= 0 && len(out) == n {
			more = true
			return false, nil
		}
		out = append(out, rest)
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// ---- links ----

// Link reads the link of a blob in a repository.
func (t *Tx) Link(repo, digest string) (Link, bool, error) {
	v, err := t.b.Get(tableLinks, repoKey(repo, digest))
	if err != nil || v == nil {
		return Link{}, false, err
	}
	l, err := decodeLink(v)
	return l, err == nil, err
}

// PutLink writes a link. The blob must be recorded. The counters follow
// the change by Adds; nothing of another repository is read or written
// (the blob record is only read, for its size).
func (t *Tx) PutLink(repo, digest string, l Link) error {
	blob, ok, err := t.Blob(digest)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: link to unrecorded blob %s", ErrCorrupt, digest)
	}
	if err := t.createRepo(repo); err != nil {
		return err
	}
	old, had, err := t.Link(repo, digest)
	if err != nil {
		return err
	}
	if !had {
		if err := t.addLinkCounters(repo, 1, blob.Size); err != nil {
			return err
		}
		if err := t.b.Put(tableBlobLinks, pairKey(digest, repo), []byte{}); err != nil {
			return err
		}
	}
	if err := t.addCounter(keyCtrLogicalBytes, (int64(l.Refs)-int64(old.Refs))*blob.Size); err != nil {
		return err
	}
	// The namespace's share of the blob follows whether a manifest here
	// references it.
	switch {
	case old.Refs == 0 && l.Refs > 0:
		err = t.chargeBlob(repo, digest, blob.Size, 1)
	case old.Refs > 0 && l.Refs == 0:
		err = t.chargeBlob(repo, digest, blob.Size, -1)
	}
	if err != nil {
		return err
	}
	return t.b.Put(tableLinks, repoKey(repo, digest), encodeLink(l))
}

// addLinkCounters counts n links (1 or -1) of a blob of the given size.
func (t *Tx) addLinkCounters(repo string, n, size int64) error {
	if err := t.addCounter(keyCtrLinks, n); err != nil {
		return err
	}
	if err := t.addRepoCounter(repo, keyRepoLinks, n); err != nil {
		return err
	}
	return t.addRepoCounter(repo, keyRepoBytes, n*size)
}

// DeleteLink removes a link (and the repository, if that emptied it) and
// reports whether another repository still links the blob: an existence
// check on the blob-to-repository index that stops at the first key left.
func (t *Tx) DeleteLink(repo, digest string) (bool, error) {
	blob, ok, err := t.Blob(digest)
	if err != nil || !ok {
		return false, err
	}
	old, had, err := t.Link(repo, digest)
	if err != nil {
		return false, err
	}
	if !had {
		return t.hasPrefix(tableBlobLinks, pairKey(digest, ""))
	}
	if err := t.addCounter(keyCtrLogicalBytes, -int64(old.Refs)*blob.Size); err != nil {
		return false, err
	}
	if old.Refs > 0 {
		if err := t.chargeBlob(repo, digest, blob.Size, -1); err != nil {
			return false, err
		}
	}
	if err := t.addLinkCounters(repo, -1, blob.Size); err != nil {
		return false, err
	}
	if err := t.b.Delete(tableBlobLinks, pairKey(digest, repo)); err != nil {
		return false, err
	}
	if err := t.b.Delete(tableLinks, repoKey(repo, digest)); err != nil {
		return false, err
	}
	linked, err := t.hasPrefix(tableBlobLinks, pairKey(digest, ""))
	if err != nil {
		return false, err
	}
	return linked, t.pruneRepo(repo)
}

// ForEachLink calls fn for every link of a repository.
func (t *Tx) ForEachLink(repo string, fn func(digest string, l Link) error) error {
	return t.scanPrefix(tableLinks, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		l, err := decodeLink(v)
		if err != nil {
			return false, err
		}
		return true, fn(string(rest), l)
	})
}

// ---- manifests ----

// Manifest reads a manifest's record.
func (t *Tx) Manifest(repo, digest string) (Manifest, bool, error) {
	v, err := t.b.Get(tableManifests, repoKey(repo, digest))
	if err != nil || v == nil {
		return Manifest{}, false, err
	}
	m, err := decodeManifest(v)
	return m, err == nil, err
}

// ManifestContent returns a copy of a manifest's bytes, or nil.
func (t *Tx) ManifestContent(repo, digest string) ([]byte, error) {
	v, err := t.b.Get(tableContent, repoKey(repo, digest))
	return clone(v), err
}

// ManifestContentSize returns the stored size of a manifest's bytes, or -1.
func (t *Tx) ManifestContentSize(repo, digest string) (int, error) {
	v, err := t.b.Get(tableContent, repoKey(repo, digest))
	if err != nil || v == nil {
		return -1, err
	}
	return len(v), nil
}

// PutManifest writes a manifest's record; content is written when non-nil.
func (t *Tx) PutManifest(repo, digest string, m Manifest, content []byte) error {
	if err := t.createRepo(repo); err != nil {
		return err
	}
	v, err := encodeManifest(m)
	if err != nil {
		return err
	}
	k := repoKey(repo, digest)
	old, err := t.b.Get(tableManifests, k)
	if err != nil {
		return err
	}
	if old == nil {
		if err := t.addCounter(keyCtrManifests, 1); err != nil {
			return err
		}
		if err := t.addCounter(keyCtrManifestBytes, m.Size); err != nil {
			return err
		}
		if err := t.addRepoCounter(repo, keyRepoManifests, 1); err != nil {
			return err
		}
		if err := t.chargeQuota(t.nsOf(repo), m.Size, 0); err != nil {
			return err
		}
	}
	if err := t.b.Put(tableManifests, k, v); err != nil {
		return err
	}
	if content != nil {
		return t.b.Put(tableContent, k, content)
	}
	return nil
}

// DeleteManifest removes a manifest's record and bytes.
func (t *Tx) DeleteManifest(repo, digest string) error {
	m, ok, err := t.Manifest(repo, digest)
	if err != nil || !ok {
		return err
	}
	if err := t.addCounter(keyCtrManifests, -1); err != nil {
		return err
	}
	if err := t.addCounter(keyCtrManifestBytes, -m.Size); err != nil {
		return err
	}
	if err := t.addRepoCounter(repo, keyRepoManifests, -1); err != nil {
		return err
	}
	if err := t.chargeQuota(t.nsOf(repo), -m.Size, 0); err != nil {
		return err
	}
	k := repoKey(repo, digest)
	if err := t.b.Delete(tableManifests, k); err != nil {
		return err
	}
	if err := t.b.Delete(tableContent, k); err != nil {
		return err
	}
	return t.pruneRepo(repo)
}

// ForEachManifest calls fn for every manifest of a repository.
func (t *Tx) ForEachManifest(repo string, fn func(digest string, m Manifest) error) error {
	return t.scanPrefix(tableManifests, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		m, err := decodeManifest(v)
		if err != nil {
			return false, err
		}
		return true, fn(string(rest), m)
	})
}

// ---- tags ----

// Tag resolves a tag to a digest.
func (t *Tx) Tag(repo, tag string) (string, bool, error) {
	v, err := t.b.Get(tableTags, repoKey(repo, tag))
	if err != nil || v == nil {
		return "", false, err
	}
	return string(v), true, nil
}

// PutTag points a tag at a digest, keeping the reverse index, and
// records pushed (Unix ns) as when the tag last moved.
func (t *Tx) PutTag(repo, tag, digest string, pushed int64) error {
	if err := t.createRepo(repo); err != nil {
		return err
	}
	old, had, err := t.Tag(repo, tag)
	if err != nil {
		return err
	}
	if had {
		if err := t.b.Delete(tableTagsByDigest, repoKey(repo, string(pairKey(old, tag)))); err != nil {
			return err
		}
	} else {
		if err := t.addCounter(keyCtrTags, 1); err != nil {
			return err
		}
		if err := t.addRepoCounter(repo, keyRepoTags, 1); err != nil {
			return err
		}
		if err := t.chargeQuota(t.nsOf(repo), 0, 1); err != nil {
			return err
		}
	}
	if err := t.b.Put(tableTags, repoKey(repo, tag), []byte(digest)); err != nil {
		return err
	}
	if err := t.b.Put(tableTagPushed, repoKey(repo, tag), encodeTime(pushed)); err != nil {
		return err
	}
	return t.b.Put(tableTagsByDigest, repoKey(repo, string(pairKey(digest, tag))), []byte{})
}

// DeleteTag removes a tag.
func (t *Tx) DeleteTag(repo, tag string) error {
	old, had, err := t.Tag(repo, tag)
	if err != nil || !had {
		return err
	}
	if err := t.b.Delete(tableTagsByDigest, repoKey(repo, string(pairKey(old, tag)))); err != nil {
		return err
	}
	if err := t.addCounter(keyCtrTags, -1); err != nil {
		return err
	}
	if err := t.addRepoCounter(repo, keyRepoTags, -1); err != nil {
		return err
	}
	if err := t.chargeQuota(t.nsOf(repo), 0, -1); err != nil {
		return err
	}
	if err := t.b.Delete(tableTags, repoKey(repo, tag)); err != nil {
		return err
	}
	if err := t.b.Delete(tableTagPushed, repoKey(repo, tag)); err != nil {
		return err
	}
	return t.pruneRepo(repo)
}

// TagsOf lists the tags that point at a digest.
func (t *Tx) TagsOf(repo, digest string) ([]string, error) {
	var out []string
	err := t.scanPrefix(tableTagsByDigest, repoKey(repo, string(pairKey(digest, ""))), func(rest, _ []byte) (bool, error) {
		out = append(out, string(rest))
		return true, nil
	})
	return out, err
}

// Tags lists up to n tags after last in lexical order, and whether more
// follow. n < 0 means no limit.
func (t *Tx) Tags(repo, last string, n int) ([]string, bool, error) {
	return t.listKeys(tableTags, repoKey(repo, ""), last, n)
}

// ForEachTag calls fn for every tag of a repository.
func (t *Tx) ForEachTag(repo string, fn func(tag, digest string) error) error {
	return t.scanPrefix(tableTags, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		return true, fn(string(rest), string(v))
	})
}

// ---- referrers ----

// Referrer is an entry of the referrers index.
type Referrer struct {
	Digest  string
	Counted bool // the subject edge holds the referrer
}

// Referrers lists the manifests whose subject is the given digest.
func (t *Tx) Referrers(repo, subject string) ([]Referrer, error) {
	var out []Referrer
	err := t.scanPrefix(tableReferrers, repoKey(repo, string(pairKey(subject, ""))), func(rest, v []byte) (bool, error) {
		out = append(out, Referrer{Digest: string(rest), Counted: len(v) == 1 && v[0] == 1})
		return true, nil
	})
	return out, err
}

// PutReferrer records that digest has the given subject.
func (t *Tx) PutReferrer(repo, subject, digest string, counted bool) error {
	if err := t.createRepo(repo); err != nil {
		return err
	}
	v := []byte{0}
	if counted {
		v[0] = 1
	}
	return t.b.Put(tableReferrers, repoKey(repo, string(pairKey(subject, digest))), v)
}

// DeleteReferrer removes an entry of the referrers index.
func (t *Tx) DeleteReferrer(repo, subject, digest string) error {
	return t.b.Delete(tableReferrers, repoKey(repo, string(pairKey(subject, digest))))
}

// ForEachReferrer calls fn for every entry of a repository's referrers index.
func (t *Tx) ForEachReferrer(repo string, fn func(subject string, r Referrer) error) error {
	return t.scanPrefix(tableReferrers, repoKey(repo, ""), func(rest, v []byte) (bool, error) {
		i := bytes.IndexByte(rest, sep)
		if i < 0 {
			return false, fmt.Errorf("%w: referrer key", ErrCorrupt)
		}
		return true, fn(string(rest[:i]), Referrer{Digest: string(rest[i+1:]), Counted: len(v) == 1 && v[0] == 1})
	})
}
