package kv

// Counters are the store's totals. Those a write can change without
// knowing the rest of the store are counters (backend Add) that every
// write method of Tx adds to in the same transaction and never reads; the
// three that depend on every repository at once (SharedBytes and the
// Unreferenced pair) are computed when read, from one snapshot (see
// Counters).
type Counters struct {
	Repos         int64 `json:"repositories"`
	Tags          int64 `json:"tags"`
	Manifests     int64 `json:"manifests"`
	ManifestBytes int64 `json:"manifestBytes"`
	Blobs         int64 `json:"blobs"`
	BlobBytes     int64 `json:"blobBytes"`
	Links         int64 `json:"links"`
	// SharedBytes: blobs referenced by more than one manifest (computed).
	SharedBytes int64 `json:"sharedBytes"`
	// LogicalBytes: the sum over blobs of size times manifest references.
	LogicalBytes int64 `json:"logicalBytes"`
	// Unreferenced: blobs no manifest references (held by leases only;
	// computed).
	UnreferencedBlobs int64 `json:"unreferencedBlobs"`
	UnreferencedBytes int64 `json:"unreferencedBytes"`
	Leases            int64 `json:"leases"`
}

type counterField struct {
	key []byte
	v   *int64
}

// stored pairs each stored counter with its key, in a fixed order.
func (c *Counters) stored() []counterField {
	return []counterField{
		{keyCtrRepos, &c.Repos}, {keyCtrTags, &c.Tags}, {keyCtrManifests, &c.Manifests},
		{keyCtrManifestBytes, &c.ManifestBytes}, {keyCtrBlobs, &c.Blobs}, {keyCtrBlobBytes, &c.BlobBytes},
		{keyCtrLinks, &c.Links}, {keyCtrLogicalBytes, &c.LogicalBytes}, {keyCtrLeases, &c.Leases},
	}
}

// RepoStats are one repository's totals: counters like those of Counters,
// but UniqueBytes, which depends on the other repositories, is computed
// when read (see RepoStats).
type RepoStats struct {
	Tags        int64 `json:"tags"`
	Manifests   int64 `json:"manifests"`
	Links       int64 `json:"blobs"`
	Bytes       int64 `json:"bytes"`       // sizes of the blobs linked here
	UniqueBytes int64 `json:"uniqueBytes"` // of those, linked in no other repository
}

// stored pairs each stored counter of a repository with its key (in the
// counters of table repositories: <repo> 0x00 <name>).
func (s *RepoStats) stored(repo string) []counterField {
	return []counterField{
		{repoKey(repo, string(keyRepoTags)), &s.Tags}, {repoKey(repo, string(keyRepoManifests)), &s.Manifests},
		{repoKey(repo, string(keyRepoLinks)), &s.Links}, {repoKey(repo, string(keyRepoBytes)), &s.Bytes},
	}
}

func (t *Tx) addCounter(key []byte, delta int64) error {
	return t.b.Add(tableCounters, key, delta)
}

// addRepoCounter adds to one of a repository's counters (keyRepo*).
func (t *Tx) addRepoCounter(repo string, name []byte, delta int64) error {
	return t.b.Add(tableRepos, repoKey(repo, string(name)), delta)
}

// Counters reads the totals. It reads counters, so it belongs in a
// read-only transaction (or in repair). The computed figures cost one scan
// of the blob records and of the blob-to-repository index, and one read of
// a link per entry of that index: O(blobs + links).
func (t *Tx) Counters() (Counters, error) {
	c, err := t.StoredCounters()
	if err != nil {
		return Counters{}, err
	}
	err = t.ForEachBlobUse(func(_ string, size int64, u BlobUse) error {
		switch {
		case u.Refs == 0:
			c.UnreferencedBlobs++
			c.UnreferencedBytes += size
		case u.Refs >= 2:
			c.SharedBytes += size
		}
		return nil
	})
	return c, err
}

// StoredCounters reads the stored totals only, leaving the computed ones
// (SharedBytes, UnreferencedBlobs, UnreferencedBytes) zero: a few counter
// reads, whatever the size of the store.
func (t *Tx) StoredCounters() (Counters, error) {
	var c Counters
	for _, f := range c.stored() {
		v, err := t.b.Counter(tableCounters, f.key)
		if err != nil {
			return Counters{}, err
		}
		*f.v = v
	}
	return c, nil
}

// BlobUse is how a blob is used across the store, as derived from the
// blob-to-repository index and the links (nothing stores it).
type BlobUse struct {
	Links uint64 // repositories that link the blob
	Refs  uint64 // manifest references over all repositories
}

// ForEachBlobUse calls fn for every blob record, in digest order, with
// how it is used. A read-only snapshot's scan: see Counters for its cost.
// It reuses its key buffers and decodes nothing but the counts it sums.
func (t *Tx) ForEachBlobUse(fn func(digest string, size int64, u BlobUse) error) error {
	var prefix, linkKey []byte
	return t.b.Scan(tableBlobs, nil, func(k, v []byte) (bool, error) {
		b, err := decodeBlob(v)
		if err != nil {
			return false, err
		}
		var u BlobUse
		prefix = append(append(prefix[:0], k...), sep)
		err = t.scanPrefix(tableBlobLinks, prefix, func(repo, _ []byte) (bool, error) {
			u.Links++
			linkKey = append(append(append(linkKey[:0], repo...), sep), k...)
			lv, err := t.b.Get(tableLinks, linkKey)
			if err != nil {
				return false, err
			}
			if len(lv) >= 8 {
				u.Refs += getU64(lv)
			}
			return true, nil
		})
		if err != nil {
			return false, err
		}
		return true, fn(string(k), b.Size, u)
	})
}

// SetCounters makes the stored totals equal c (fsck --repair, after a
// recount) by adding the differences. The computed figures are not stored
// and are ignored.
func (t *Tx) SetCounters(c Counters) error {
	for _, f := range c.stored() {
		cur, err := t.b.Counter(tableCounters, f.key)
		if err != nil {
			return err
		}
		if err := t.b.Add(tableCounters, f.key, *f.v-cur); err != nil {
			return err
		}
	}
	return nil
}

// RepoStats reads one repository's totals. Like Counters, it belongs in a
// read-only transaction. UniqueBytes costs a look at the blob-to-repository
// index (at most two keys) and a blob record per link of the repository.
func (t *Tx) RepoStats(repo string) (RepoStats, bool, error) {
	s, ok, err := t.RepoStoredStats(repo)
	if !ok || err != nil {
		return s, ok, err
	}
	err = t.scanPrefix(tableLinks, repoKey(repo, ""), func(rest, _ []byte) (bool, error) {
		dg := string(rest)
		other, err := t.otherLinkingRepo(dg, repo)
		if err != nil || other != "" {
			return err == nil, err
		}
		b, _, err := t.Blob(dg)
		s.UniqueBytes += b.Size
		return err == nil, err
	})
	if err != nil {
		return RepoStats{}, false, err
	}
	return s, true, nil
}

// RepoStoredStats reads one repository's stored totals only, leaving
// UniqueBytes zero: a few counter reads, whatever the repository's size.
func (t *Tx) RepoStoredStats(repo string) (RepoStats, bool, error) {
	if ok, err := t.RepoExists(repo); !ok || err != nil {
		return RepoStats{}, false, err
	}
	var s RepoStats
	for _, f := range s.stored(repo) {
		v, err := t.b.Counter(tableRepos, f.key)
		if err != nil {
			return RepoStats{}, false, err
		}
		*f.v = v
	}
	return s, true, nil
}

// SetRepoStats makes a repository's stored totals equal s (fsck --repair)
// by adding the differences; UniqueBytes is computed and ignored.
func (t *Tx) SetRepoStats(repo string, s RepoStats) error {
	if ok, err := t.RepoExists(repo); !ok || err != nil {
		return err
	}
	for _, f := range s.stored(repo) {
		cur, err := t.b.Counter(tableRepos, f.key)
		if err != nil {
			return err
		}
		if err := t.b.Add(tableRepos, f.key, *f.v-cur); err != nil {
			return err
		}
	}
	return nil
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
