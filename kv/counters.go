package kv

import "fmt"

// Counters are the store's totals, kept up to date by every write method of
// Tx in the same transaction, so that reading them costs a few key reads.
type Counters struct {
	Repos         int64 `json:"repositories"`
	Tags          int64 `json:"tags"`
	Manifests     int64 `json:"manifests"`
	ManifestBytes int64 `json:"manifestBytes"`
	Blobs         int64 `json:"blobs"`
	BlobBytes     int64 `json:"blobBytes"`
	Links         int64 `json:"links"`
	// SharedBytes: blobs referenced by more than one manifest.
	SharedBytes int64 `json:"sharedBytes"`
	// LogicalBytes: the sum over blobs of size times manifest references.
	LogicalBytes int64 `json:"logicalBytes"`
	// Unreferenced: blobs no manifest references (held by leases only).
	UnreferencedBlobs int64 `json:"unreferencedBlobs"`
	UnreferencedBytes int64 `json:"unreferencedBytes"`
	Leases            int64 `json:"leases"`
}

// counterFields pairs each counter with its key, in a fixed order.
func (c *Counters) fields() []struct {
	key []byte
	v   *int64
} {
	return []struct {
		key []byte
		v   *int64
	}{
		{keyCtrRepos, &c.Repos}, {keyCtrTags, &c.Tags}, {keyCtrManifests, &c.Manifests},
		{keyCtrManifestBytes, &c.ManifestBytes}, {keyCtrBlobs, &c.Blobs}, {keyCtrBlobBytes, &c.BlobBytes},
		{keyCtrLinks, &c.Links}, {keyCtrSharedBytes, &c.SharedBytes}, {keyCtrLogicalBytes, &c.LogicalBytes},
		{keyCtrUnrefBlobs, &c.UnreferencedBlobs}, {keyCtrUnrefBytes, &c.UnreferencedBytes}, {keyCtrLeases, &c.Leases},
	}
}

// RepoStats are one repository's totals, kept like Counters.
type RepoStats struct {
	Tags        int64 `json:"tags"`
	Manifests   int64 `json:"manifests"`
	Links       int64 `json:"blobs"`
	Bytes       int64 `json:"bytes"`       // sizes of the blobs linked here
	UniqueBytes int64 `json:"uniqueBytes"` // of those, linked in no other repository
}

func encodeRepoStats(s RepoStats) []byte {
	out := make([]byte, 40)
	for i, v := range []int64{s.Tags, s.Manifests, s.Links, s.Bytes, s.UniqueBytes} {
		putU64(out[i*8:], uint64(v))
	}
	return out
}

func decodeRepoStats(v []byte) (RepoStats, error) {
	if len(v) != 40 {
		return RepoStats{}, fmt.Errorf("%w: repository stats of %d bytes", ErrCorrupt, len(v))
	}
	g := func(i int) int64 { return int64(getU64(v[i*8:])) }
	return RepoStats{Tags: g(0), Manifests: g(1), Links: g(2), Bytes: g(3), UniqueBytes: g(4)}, nil
}

func (t *Tx) addCounter(key []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	var cur int64
	v, err := t.b.Get(tableCounters, key)
	if err != nil {
		return err
	}
	if len(v) == 8 {
		cur = int64(getU64(v))
	}
	out := make([]byte, 8)
	putU64(out, uint64(cur+delta))
	return t.b.Put(tableCounters, key, out)
}

// Counters reads the totals.
func (t *Tx) Counters() (Counters, error) {
	var c Counters
	for _, f := range c.fields() {
		v, err := t.b.Get(tableCounters, f.key)
		if err != nil {
			return Counters{}, err
		}
		if len(v) == 8 {
			*f.v = int64(getU64(v))
		}
	}
	return c, nil
}

// SetCounters overwrites the totals (fsck --repair, after a recount).
func (t *Tx) SetCounters(c Counters) error {
	for _, f := range c.fields() {
		out := make([]byte, 8)
		putU64(out, uint64(*f.v))
		if err := t.b.Put(tableCounters, f.key, out); err != nil {
			return err
		}
	}
	return nil
}

// RepoStats reads one repository's totals.
func (t *Tx) RepoStats(repo string) (RepoStats, bool, error) {
	v, err := t.b.Get(tableRepos, []byte(repo))
	if err != nil || v == nil {
		return RepoStats{}, false, err
	}
	s, err := decodeRepoStats(v)
	return s, err == nil, err
}

// SetRepoStats overwrites a repository's totals (fsck --repair).
func (t *Tx) SetRepoStats(repo string, s RepoStats) error {
	if ok, err := t.RepoExists(repo); !ok || err != nil {
		return err
	}
	return t.b.Put(tableRepos, []byte(repo), encodeRepoStats(s))
}

func (t *Tx) addRepoStats(repo string, fn func(*RepoStats)) error {
	s, ok, err := t.RepoStats(repo)
	if err != nil || !ok {
		return err
	}
	fn(&s)
	return t.b.Put(tableRepos, []byte(repo), encodeRepoStats(s))
}

// adjustBlobRefs moves a blob's manifest-reference count by delta and the
// counters that depend on it.
func (t *Tx) adjustBlobRefs(b *Blob, delta int64) error {
	if delta == 0 {
		return nil
	}
	before, after := int64(b.Refs), int64(b.Refs)+delta
	if after < 0 {
		return fmt.Errorf("%w: blob reference count below zero", ErrCorrupt)
	}
	b.Refs = uint64(after)
	if err := t.addCounter(keyCtrLogicalBytes, delta*b.Size); err != nil {
		return err
	}
	var unref, shared int64
	switch {
	case before == 0 && after > 0:
		unref = -1
	case before > 0 && after == 0:
		unref = 1
	}
	switch {
	case before < 2 && after >= 2:
		shared = 1
	case before >= 2 && after < 2:
		shared = -1
	}
	if err := t.addCounter(keyCtrUnrefBlobs, unref); err != nil {
		return err
	}
	if err := t.addCounter(keyCtrUnrefBytes, unref*b.Size); err != nil {
		return err
	}
	return t.addCounter(keyCtrSharedBytes, shared*b.Size)
}

// otherLinkingRepo returns a repository other than repo that links d.
func (t *Tx) otherLinkingRepo(d, repo string) (string, error) {
	other := ""
	err := t.scanPrefix(tableBlobLinks, pairKey(d, ""), func(rest, _ []byte) (bool, error) {
		if r := string(rest); r != repo {
			other = r
			return false, nil
		}
		return true, nil
	})
	return other, err
}

// LinkingRepos lists the repositories that link a blob.
func (t *Tx) LinkingRepos(d string) ([]string, error) {
	var out []string
	err := t.scanPrefix(tableBlobLinks, pairKey(d, ""), func(rest, _ []byte) (bool, error) {
		out = append(out, string(rest))
		return true, nil
	})
	return out, err
}

// RewriteLink overwrites a link as is, counters untouched (repair).
func (t *Tx) RewriteLink(repo, digest string, l Link) error {
	if ok, err := t.RepoExists(repo); !ok || err != nil {
		return err
	}
	return t.b.Put(tableLinks, repoKey(repo, digest), encodeLink(l))
}

// RewriteBlobLinks replaces the blob-to-repository index (repair).
func (t *Tx) RewriteBlobLinks(linkedIn map[string][]string) error {
	keys, err := t.keysWithPrefix(tableBlobLinks, nil)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.b.Delete(tableBlobLinks, k); err != nil {
			return err
		}
	}
	for d, repos := range linkedIn {
		for _, r := range repos {
			if err := t.b.Put(tableBlobLinks, pairKey(d, r), []byte{}); err != nil {
				return err
			}
		}
	}
	return nil
}
