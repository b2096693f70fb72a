package kv

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
)

// Tx is one transaction. Every value it returns is a copy that outlives it.
// Writes on a read-only Tx fail with bbolt's error.
type Tx struct {
	tx *bbolt.Tx
}

func (t *Tx) top(name []byte) *bbolt.Bucket { return t.tx.Bucket(name) }

// repo returns a repository's sub-bucket, or nil if the repository does not exist.
func (t *Tx) repo(repo string, name []byte) *bbolt.Bucket {
	r := t.top(bucketRepos).Bucket([]byte(repo))
	if r == nil {
		return nil
	}
	return r.Bucket(name)
}

// repoW returns a repository's sub-bucket, creating the repository.
func (t *Tx) repoW(repo string, name []byte) (*bbolt.Bucket, error) {
	r := t.top(bucketRepos).Bucket([]byte(repo))
	if r == nil {
		var err error
		if r, err = t.top(bucketRepos).CreateBucket([]byte(repo)); err != nil {
			return nil, err
		}
		for _, n := range repoBuckets {
			if _, err := r.CreateBucket(n); err != nil {
				return nil, err
			}
		}
		if err := r.Put(keyRepoStats, encodeRepoStats(RepoStats{})); err != nil {
			return nil, err
		}
		if err := t.addCounter(keyCtrRepos, 1); err != nil {
			return nil, err
		}
	}
	return r.Bucket(name), nil
}

// pruneRepo removes a repository that has no manifests, tags or links left.
func (t *Tx) pruneRepo(repo string) error {
	r := t.top(bucketRepos).Bucket([]byte(repo))
	if r == nil {
		return nil
	}
	for _, n := range repoContentBuckets {
		if k, _ := r.Bucket(n).Cursor().First(); k != nil {
			return nil
		}
	}
	if err := t.addCounter(keyCtrRepos, -1); err != nil {
		return err
	}
	return t.top(bucketRepos).DeleteBucket([]byte(repo))
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// ---- blobs ----

// Blob reads a blob record.
func (t *Tx) Blob(digest string) (Blob, bool, error) {
	v := t.top(bucketBlobs).Get([]byte(digest))
	if v == nil {
		return Blob{}, false, nil
	}
	b, err := decodeBlob(v)
	return b, err == nil, err
}

// CreateBlob records a blob of the given size, if it is not recorded yet,
// and clears any tombstone of the digest. A new blob has no links.
func (t *Tx) CreateBlob(digest string, size int64) error {
	if _, ok, err := t.Blob(digest); ok || err != nil {
		return err
	}
	if err := t.top(bucketTombstones).Delete([]byte(digest)); err != nil {
		return err
	}
	for _, c := range []struct {
		k []byte
		d int64
	}{{keyCtrBlobs, 1}, {keyCtrBlobBytes, size}, {keyCtrUnrefBlobs, 1}, {keyCtrUnrefBytes, size}} {
		if err := t.addCounter(c.k, c.d); err != nil {
			return err
		}
	}
	return t.top(bucketBlobs).Put([]byte(digest), encodeBlob(Blob{Size: size}))
}

// RewriteBlob overwrites a blob record as is, counters untouched (repair).
func (t *Tx) RewriteBlob(digest string, b Blob) error {
	return t.top(bucketBlobs).Put([]byte(digest), encodeBlob(b))
}

// DeleteBlob removes a blob record and leaves a tombstone so that its file
// is removed even if the process dies before it gets to it.
func (t *Tx) DeleteBlob(digest string) error {
	b, ok, err := t.Blob(digest)
	if err != nil || !ok {
		return err
	}
	unref := int64(0)
	if b.Refs == 0 {
		unref = 1
	}
	for _, c := range []struct {
		k []byte
		d int64
	}{{keyCtrBlobs, -1}, {keyCtrBlobBytes, -b.Size}, {keyCtrUnrefBlobs, -unref}, {keyCtrUnrefBytes, -unref * b.Size},
		{keyCtrLogicalBytes, -int64(b.Refs) * b.Size}} {
		if err := t.addCounter(c.k, c.d); err != nil {
			return err
		}
	}
	if b.Refs >= 2 {
		if err := t.addCounter(keyCtrSharedBytes, -b.Size); err != nil {
			return err
		}
	}
	if err := t.top(bucketBlobs).Delete([]byte(digest)); err != nil {
		return err
	}
	// The tombstone carries this transaction's id, so that the removal of
	// an earlier one's file never clears it.
	gen := make([]byte, 8)
	putU64(gen, uint64(t.tx.ID()))
	return t.top(bucketTombstones).Put([]byte(digest), gen)
}

// ForEachBlob calls fn for every blob record in digest order.
func (t *Tx) ForEachBlob(fn func(digest string, b Blob) error) error {
	return t.top(bucketBlobs).ForEach(func(k, v []byte) error {
		b, err := decodeBlob(v)
		if err != nil {
			return err
		}
		return fn(string(k), b)
	})
}

// Tombstones lists digests whose files are to be removed.
func (t *Tx) Tombstones() []string {
	var out []string
	t.top(bucketTombstones).ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out
}

// Tombstone returns the generation of a digest's tombstone.
func (t *Tx) Tombstone(digest string) (uint64, bool) {
	v := t.top(bucketTombstones).Get([]byte(digest))
	if v == nil {
		return 0, false
	}
	if len(v) != 8 {
		return 0, true
	}
	return getU64(v), true
}

// DeleteTombstone forgets a tombstone once its file is gone, unless a later
// deletion has written a newer one since (gen is the one that was seen).
func (t *Tx) DeleteTombstone(digest string, gen uint64) error {
	if cur, ok := t.Tombstone(digest); !ok || cur != gen {
		return nil
	}
	return t.top(bucketTombstones).Delete([]byte(digest))
}

// ---- leases ----

// PutLease adds an entry to the expiry index.
func (t *Tx) PutLease(l Lease) error {
	b, k := t.top(bucketLeases), leaseKey(l)
	if b.Get(k) != nil {
		return nil
	}
	if err := t.addCounter(keyCtrLeases, 1); err != nil {
		return err
	}
	return b.Put(k, []byte{})
}

// DeleteLease removes an entry from the expiry index.
func (t *Tx) DeleteLease(l Lease) error {
	b, k := t.top(bucketLeases), leaseKey(l)
	if b.Get(k) == nil {
		return nil
	}
	if err := t.addCounter(keyCtrLeases, -1); err != nil {
		return err
	}
	return b.Delete(k)
}

// ExpiredLeases returns up to max leases whose expiry is at or before now,
// earliest first. It reads only those entries.
func (t *Tx) ExpiredLeases(now int64, max int) ([]Lease, error) {
	var out []Lease
	c := t.top(bucketLeases).Cursor()
	for k, _ := c.First(); k != nil && len(out) < max; k, _ = c.Next() {
		l, err := parseLeaseKey(k)
		if err != nil {
			return out, err
		}
		if l.Expiry > now {
			break
		}
		out = append(out, l)
	}
	return out, nil
}

// ForEachLease calls fn for every lease in expiry order.
func (t *Tx) ForEachLease(fn func(Lease) error) error {
	return t.top(bucketLeases).ForEach(func(k, _ []byte) error {
		l, err := parseLeaseKey(k)
		if err != nil {
			return err
		}
		return fn(l)
	})
}

// ---- repositories ----

// RepoExists reports whether the repository has anything in it.
func (t *Tx) RepoExists(repo string) bool {
	return t.top(bucketRepos).Bucket([]byte(repo)) != nil
}

// Repos lists up to n repository names after last, in lexical order, and
// whether more follow. n < 0 means no limit.
func (t *Tx) Repos(last string, n int) ([]string, bool) {
	return listKeys(t.top(bucketRepos).Cursor(), last, n)
}

func listKeys(c *bbolt.Cursor, last string, n int) ([]string, bool) {
	var k []byte
	if last == "" {
		k, _ = c.First()
	} else {
		k, _ = c.Seek([]byte(last))
		if k != nil && string(k) == last {
			k, _ = c.Next()
		}
	}
	out := []string{}
	for ; k != nil; k, _ = c.Next() {
		if n >= 0 && len(out) == n {
			return out, true
		}
		out = append(out, string(k))
	}
	return out, false
}

// ---- links ----

// Link reads the link of a blob in a repository.
func (t *Tx) Link(repo, digest string) (Link, bool, error) {
	b := t.repo(repo, bucketLinks)
	if b == nil {
		return Link{}, false, nil
	}
	v := b.Get([]byte(digest))
	if v == nil {
		return Link{}, false, nil
	}
	l, err := decodeLink(v)
	return l, err == nil, err
}

// PutLink writes a link. The blob must be recorded; its count of links and
// of manifest references, and the counters, follow the change.
func (t *Tx) PutLink(repo, digest string, l Link) error {
	blob, ok, err := t.Blob(digest)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: link to unrecorded blob %s", ErrCorrupt, digest)
	}
	b, err := t.repoW(repo, bucketLinks)
	if err != nil {
		return err
	}
	var old Link
	v := b.Get([]byte(digest))
	if v != nil {
		if old, err = decodeLink(v); err != nil {
			return err
		}
	} else {
		blob.Links++
		if err := t.addCounter(keyCtrLinks, 1); err != nil {
			return err
		}
		if err := t.addRepoStats(repo, func(s *RepoStats) {
			s.Links++
			s.Bytes += blob.Size
			if blob.Links == 1 {
				s.UniqueBytes += blob.Size
			}
		}); err != nil {
			return err
		}
		if blob.Links == 2 {
			other := t.otherLinkingRepo(digest, repo)
			if err := t.addRepoStats(other, func(s *RepoStats) { s.UniqueBytes -= blob.Size }); err != nil {
				return err
			}
		}
		if err := t.top(bucketBlobLinks).Put(pairKey(digest, repo), []byte{}); err != nil {
			return err
		}
	}
	if err := t.adjustBlobRefs(&blob, int64(l.Refs)-int64(old.Refs)); err != nil {
		return err
	}
	if err := t.RewriteBlob(digest, blob); err != nil {
		return err
	}
	return b.Put([]byte(digest), encodeLink(l))
}

// DeleteLink removes a link (and the repository, if that emptied it) and
// returns how many repositories still link the blob.
func (t *Tx) DeleteLink(repo, digest string) (uint64, error) {
	b := t.repo(repo, bucketLinks)
	blob, ok, err := t.Blob(digest)
	if err != nil {
		return 0, err
	}
	if b == nil || !ok {
		return blob.Links, nil
	}
	v := b.Get([]byte(digest))
	if v == nil {
		return blob.Links, nil
	}
	old, err := decodeLink(v)
	if err != nil {
		return 0, err
	}
	if err := t.adjustBlobRefs(&blob, -int64(old.Refs)); err != nil {
		return 0, err
	}
	if blob.Links > 0 {
		blob.Links--
	}
	if err := t.addCounter(keyCtrLinks, -1); err != nil {
		return 0, err
	}
	if err := t.addRepoStats(repo, func(s *RepoStats) {
		s.Links--
		s.Bytes -= blob.Size
		if blob.Links == 0 {
			s.UniqueBytes -= blob.Size
		}
	}); err != nil {
		return 0, err
	}
	if err := t.top(bucketBlobLinks).Delete(pairKey(digest, repo)); err != nil {
		return 0, err
	}
	if blob.Links == 1 {
		other := t.otherLinkingRepo(digest, repo)
		if err := t.addRepoStats(other, func(s *RepoStats) { s.UniqueBytes += blob.Size }); err != nil {
			return 0, err
		}
	}
	if err := t.RewriteBlob(digest, blob); err != nil {
		return 0, err
	}
	if err := b.Delete([]byte(digest)); err != nil {
		return 0, err
	}
	return blob.Links, t.pruneRepo(repo)
}

// ForEachLink calls fn for every link of a repository.
func (t *Tx) ForEachLink(repo string, fn func(digest string, l Link) error) error {
	b := t.repo(repo, bucketLinks)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		l, err := decodeLink(v)
		if err != nil {
			return err
		}
		return fn(string(k), l)
	})
}

// ---- manifests ----

// Manifest reads a manifest's record.
func (t *Tx) Manifest(repo, digest string) (Manifest, bool, error) {
	b := t.repo(repo, bucketManifests)
	if b == nil {
		return Manifest{}, false, nil
	}
	v := b.Get([]byte(digest))
	if v == nil {
		return Manifest{}, false, nil
	}
	m, err := decodeManifest(v)
	return m, err == nil, err
}

// ManifestContent returns a copy of a manifest's bytes, or nil.
func (t *Tx) ManifestContent(repo, digest string) []byte {
	b := t.repo(repo, bucketContent)
	if b == nil {
		return nil
	}
	return clone(b.Get([]byte(digest)))
}

// PutManifest writes a manifest's record; content is written when non-nil.
func (t *Tx) PutManifest(repo, digest string, m Manifest, content []byte) error {
	b, err := t.repoW(repo, bucketManifests)
	if err != nil {
		return err
	}
	v, err := encodeManifest(m)
	if err != nil {
		return err
	}
	if b.Get([]byte(digest)) == nil {
		if err := t.addCounter(keyCtrManifests, 1); err != nil {
			return err
		}
		if err := t.addCounter(keyCtrManifestBytes, m.Size); err != nil {
			return err
		}
		if err := t.addRepoStats(repo, func(s *RepoStats) { s.Manifests++ }); err != nil {
			return err
		}
	}
	if err := b.Put([]byte(digest), v); err != nil {
		return err
	}
	if content != nil {
		return t.repo(repo, bucketContent).Put([]byte(digest), content)
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
	if err := t.addRepoStats(repo, func(s *RepoStats) { s.Manifests-- }); err != nil {
		return err
	}
	if err := t.repo(repo, bucketManifests).Delete([]byte(digest)); err != nil {
		return err
	}
	if err := t.repo(repo, bucketContent).Delete([]byte(digest)); err != nil {
		return err
	}
	return t.pruneRepo(repo)
}

// ForEachManifest calls fn for every manifest of a repository.
func (t *Tx) ForEachManifest(repo string, fn func(digest string, m Manifest) error) error {
	b := t.repo(repo, bucketManifests)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		m, err := decodeManifest(v)
		if err != nil {
			return err
		}
		return fn(string(k), m)
	})
}

// ---- tags ----

// Tag resolves a tag to a digest.
func (t *Tx) Tag(repo, tag string) (string, bool) {
	b := t.repo(repo, bucketTags)
	if b == nil {
		return "", false
	}
	v := b.Get([]byte(tag))
	return string(v), v != nil
}

// PutTag points a tag at a digest, keeping the reverse index.
func (t *Tx) PutTag(repo, tag, digest string) error {
	b, err := t.repoW(repo, bucketTags)
	if err != nil {
		return err
	}
	rev := t.repo(repo, bucketTagsByDigest)
	if old := b.Get([]byte(tag)); old != nil {
		if err := rev.Delete(pairKey(string(old), tag)); err != nil {
			return err
		}
	} else {
		if err := t.addCounter(keyCtrTags, 1); err != nil {
			return err
		}
		if err := t.addRepoStats(repo, func(s *RepoStats) { s.Tags++ }); err != nil {
			return err
		}
	}
	if err := b.Put([]byte(tag), []byte(digest)); err != nil {
		return err
	}
	return rev.Put(pairKey(digest, tag), nil)
}

// DeleteTag removes a tag.
func (t *Tx) DeleteTag(repo, tag string) error {
	b := t.repo(repo, bucketTags)
	if b == nil {
		return nil
	}
	old := b.Get([]byte(tag))
	if old == nil {
		return nil
	}
	if err := t.repo(repo, bucketTagsByDigest).Delete(pairKey(string(old), tag)); err != nil {
		return err
	}
	if err := t.addCounter(keyCtrTags, -1); err != nil {
		return err
	}
	if err := t.addRepoStats(repo, func(s *RepoStats) { s.Tags-- }); err != nil {
		return err
	}
	if err := b.Delete([]byte(tag)); err != nil {
		return err
	}
	return t.pruneRepo(repo)
}

// TagsOf lists the tags that point at a digest.
func (t *Tx) TagsOf(repo, digest string) []string {
	b := t.repo(repo, bucketTagsByDigest)
	if b == nil {
		return nil
	}
	prefix := pairKey(digest, "")
	var out []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[len(prefix):]))
	}
	return out
}

// Tags lists up to n tags after last in lexical order, and whether more
// follow. n < 0 means no limit.
func (t *Tx) Tags(repo, last string, n int) ([]string, bool) {
	b := t.repo(repo, bucketTags)
	if b == nil {
		return []string{}, false
	}
	return listKeys(b.Cursor(), last, n)
}

// ForEachTag calls fn for every tag of a repository.
func (t *Tx) ForEachTag(repo string, fn func(tag, digest string) error) error {
	b := t.repo(repo, bucketTags)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), string(v)) })
}

// ---- referrers ----

// Referrer is an entry of the referrers index.
type Referrer struct {
	Digest  string
	Counted bool // the subject edge holds the referrer
}

// Referrers lists the manifests whose subject is the given digest.
func (t *Tx) Referrers(repo, subject string) []Referrer {
	b := t.repo(repo, bucketReferrers)
	if b == nil {
		return nil
	}
	prefix := pairKey(subject, "")
	var out []Referrer
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, Referrer{Digest: string(k[len(prefix):]), Counted: len(v) == 1 && v[0] == 1})
	}
	return out
}

// PutReferrer records that digest has the given subject.
func (t *Tx) PutReferrer(repo, subject, digest string, counted bool) error {
	b, err := t.repoW(repo, bucketReferrers)
	if err != nil {
		return err
	}
	v := []byte{0}
	if counted {
		v[0] = 1
	}
	return b.Put(pairKey(subject, digest), v)
}

// DeleteReferrer removes an entry of the referrers index.
func (t *Tx) DeleteReferrer(repo, subject, digest string) error {
	b := t.repo(repo, bucketReferrers)
	if b == nil {
		return nil
	}
	return b.Delete(pairKey(subject, digest))
}

// ForEachReferrer calls fn for every entry of a repository's referrers index.
func (t *Tx) ForEachReferrer(repo string, fn func(subject string, r Referrer) error) error {
	b := t.repo(repo, bucketReferrers)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, sep)
		if i < 0 {
			return ErrCorrupt
		}
		return fn(string(k[:i]), Referrer{Digest: string(k[i+1:]), Counted: len(v) == 1 && v[0] == 1})
	})
}

// ManifestContentSize returns the stored size of a manifest's bytes, or -1.
func (t *Tx) ManifestContentSize(repo, digest string) int {
	b := t.repo(repo, bucketContent)
	if b == nil {
		return -1
	}
	v := b.Get([]byte(digest))
	if v == nil {
		return -1
	}
	return len(v)
}
