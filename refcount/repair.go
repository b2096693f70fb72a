package refcount

import (
	"sort"

	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// RepairReport says what Repair did.
type RepairReport struct {
	Fixed []Problem `json:"fixed"`
	// Broken lists manifests (repo@digest) and tags (repo:tag) that reference
	// blobs whose bytes were missing or corrupt; they are removed only when
	// asked to.
	Broken         []string `json:"broken"`
	BrokenRemoved  bool     `json:"brokenRemoved"`
	ReclaimedBytes int64    `json:"reclaimedBytes"`
	// Remaining are the problems a check still finds afterwards.
	Remaining []Problem `json:"remaining"`
}

// Repair fixes what can be fixed without losing data: it finishes
// interrupted work, sweeps expired leases, removes orphan files, recomputes
// every count, index and counter from the edges, and removes the records of
// blobs whose bytes are missing or corrupt (deep) so that nothing claims
// they exist. Manifests that referenced those blobs are listed, and removed
// with their tags when removeBroken is set. A file that a record names and
// that verifies is never deleted.
func (r *Registry) Repair(deep, removeBroken bool) (*RepairReport, error) {
	rep := &RepairReport{Broken: []string{}, Fixed: []Problem{}}
	if err := r.Recover(); err != nil {
		return nil, err
	}
	for {
		n, err := r.Sweep(1000)
		if err != nil {
			return nil, err
		}
		if n < 1000 {
			break
		}
	}
	before, err := r.Check(deep)
	if err != nil {
		return nil, err
	}
	bad := map[string]bool{}
	for _, p := range before {
		switch p.Kind {
		case ProblemBlobMissing, ProblemBlobSize, ProblemBlobCorrupt:
			bad[p.Object] = true
		case ProblemOrphanFile, ProblemPendingDelete:
			if err := r.removeOrphan(p.Object); err != nil {
				return nil, err
			}
		}
	}
	c, err := r.update(func(tx *kv.Tx, c *change) error {
		return r.repairTx(tx, c, bad, removeBroken, rep)
	})
	if err != nil {
		return nil, err
	}
	rep.ReclaimedBytes = c.Reclaimed
	rep.BrokenRemoved = removeBroken && len(rep.Broken) > 0
	after, err := r.Check(deep)
	if err != nil {
		return nil, err
	}
	still := map[string]bool{}
	for _, p := range after {
		still[p.Kind+" "+p.Object] = true
	}
	for _, p := range before {
		if !still[p.Kind+" "+p.Object] {
			rep.Fixed = append(rep.Fixed, p)
		}
	}
	rep.Remaining = after
	if rep.Remaining == nil {
		rep.Remaining = []Problem{}
	}
	return rep, nil
}

// removeOrphan removes a blob file that no record names, under its lock.
func (r *Registry) removeOrphan(obj string) error {
	d, err := digest.Parse(obj)
	if err != nil {
		return nil // not a blob name: left for the operator
	}
	return r.removeFiles([]digest.Digest{d})
}

func (r *Registry) repairTx(tx *kv.Tx, c *change, bad map[string]bool, removeBroken bool, rep *RepairReport) error {
	// Blobs whose bytes are gone or wrong: drop every link and the record;
	// the tombstone removes a corrupt file after commit.
	badList := make([]string, 0, len(bad))
	for d := range bad {
		badList = append(badList, d)
	}
	sort.Strings(badList)
	for _, d := range badList {
		for _, repo := range tx.LinkingRepos(d) {
			if _, err := tx.DeleteLink(repo, d); err != nil {
				return err
			}
		}
		if _, ok, _ := tx.Blob(d); ok {
			if err := tx.DeleteBlob(d); err != nil {
				return err
			}
			if dg, err := digest.Parse(d); err == nil {
				c.freed = append(c.freed, dg)
			}
		}
	}
	repos, _ := tx.Repos("", -1)
	// Manifests that reference what is gone are broken, and so are the
	// indexes above them.
	for _, repo := range repos {
		for {
			var broken []string
			err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error {
				for _, b := range m.Blobs {
					if _, ok, _ := tx.Link(repo, b); !ok {
						broken = append(broken, d)
						return nil
					}
				}
				for _, ch := range m.Children {
					if _, ok, _ := tx.Manifest(repo, ch); !ok {
						broken = append(broken, d)
						return nil
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !removeBroken {
				for _, d := range broken {
					rep.Broken = append(rep.Broken, repo+"@"+d)
					for _, t := range tx.TagsOf(repo, d) {
						rep.Broken = append(rep.Broken, repo+":"+t)
					}
				}
				break
			}
			if len(broken) == 0 {
				break
			}
			for _, d := range broken {
				m, ok, err := tx.Manifest(repo, d)
				if err != nil || !ok {
					continue
				}
				rep.Broken = append(rep.Broken, repo+"@"+d)
				for _, t := range tx.TagsOf(repo, d) {
					rep.Broken = append(rep.Broken, repo+":"+t)
				}
				// Forget its edges to what is gone, then delete it.
				m.Blobs = existingLinksTx(tx, repo, m.Blobs)
				m.Children = existingManifestsTx(tx, repo, m.Children)
				if err := r.deleteManifestTx(tx, c, repo, d, m); err != nil {
					return err
				}
			}
		}
	}
	return r.recountTx(tx, c)
}

func existingLinksTx(tx *kv.Tx, repo string, ds []string) []string {
	var out []string
	for _, d := range ds {
		if _, ok, _ := tx.Link(repo, d); ok {
			out = append(out, d)
		}
	}
	return out
}

func existingManifestsTx(tx *kv.Tx, repo string, ds []string) []string {
	var out []string
	for _, d := range ds {
		if _, ok, _ := tx.Manifest(repo, d); ok {
			out = append(out, d)
		}
	}
	return out
}

// recountTx recomputes every count, index and counter from the records.
func (r *Registry) recountTx(tx *kv.Tx, c *change) error {
	repos, _ := tx.Repos("", -1)
	leaseIdx := map[kv.Lease]bool{}
	if err := tx.ForEachLease(func(l kv.Lease) error { leaseIdx[l] = true; return nil }); err != nil {
		return err
	}
	// fixLease makes the expiry index agree with an object's lease, and
	// gives an object nothing holds a lease of one grace period.
	fixLease := func(kind kv.LeaseKind, repo, d string, h *kv.Hold, refs uint64) error {
		switch {
		case h.Lease == 0:
			h.Pending = 0
		case h.Pending == 0:
			h.Pending = 1
		}
		if h.Lease != 0 {
			l := kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d}
			if !leaseIdx[l] {
				if err := tx.PutLease(l); err != nil {
					return err
				}
			}
			delete(leaseIdx, l)
		}
		if refs == 0 && h.Lease == 0 {
			h.Lease, h.Pending = c.grace, 1
			return tx.PutLease(kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d})
		}
		return nil
	}
	blobRefs := map[string]uint64{}
	linkedIn := map[string][]string{}
	for _, repo := range repos {
		manifests := map[string]kv.Manifest{}
		if err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error { manifests[d] = m; return nil }); err != nil {
			return err
		}
		var danglingTags []string
		manRefs := map[string]uint64{}
		linkRefs := map[string]uint64{}
		if err := tx.ForEachTag(repo, func(tag, d string) error {
			if _, ok := manifests[d]; !ok {
				danglingTags = append(danglingTags, tag)
			} else {
				manRefs[d]++
			}
			return nil
		}); err != nil {
			return err
		}
		for _, t := range danglingTags {
			if err := tx.DeleteTag(repo, t); err != nil {
				return err
			}
		}
		for _, m := range manifests {
			for _, b := range m.Blobs {
				linkRefs[b]++
			}
			for _, ch := range m.Children {
				manRefs[ch]++
			}
		}
		type refEntry struct {
			subject string
			ref     kv.Referrer
		}
		var entries []refEntry
		if err := tx.ForEachReferrer(repo, func(s string, ref kv.Referrer) error {
			entries = append(entries, refEntry{s, ref})
			return nil
		}); err != nil {
			return err
		}
		for _, e := range entries {
			m, ok := manifests[e.ref.Digest]
			if !ok || m.Subject != e.subject {
				if err := tx.DeleteReferrer(repo, e.subject, e.ref.Digest); err != nil {
					return err
				}
				continue
			}
			_, subjectExists := manifests[e.subject]
			if e.ref.Counted && !subjectExists {
				if err := tx.PutReferrer(repo, e.subject, e.ref.Digest, false); err != nil {
					return err
				}
				continue
			}
			if e.ref.Counted {
				manRefs[e.ref.Digest]++
			}
		}
		for d, m := range manifests {
			changed := m.Refs != manRefs[d]
			m.Refs = manRefs[d]
			old := m.Hold
			if err := fixLease(kv.LeaseManifest, repo, d, &m.Hold, m.Refs); err != nil {
				return err
			}
			if changed || old != m.Hold {
				if err := tx.PutManifest(repo, d, m, nil); err != nil {
					return err
				}
			}
		}
		var links []string
		linkVals := map[string]kv.Link{}
		if err := tx.ForEachLink(repo, func(d string, l kv.Link) error {
			links = append(links, d)
			linkVals[d] = l
			return nil
		}); err != nil {
			return err
		}
		for _, d := range links {
			l := linkVals[d]
			changed := l.Refs != linkRefs[d]
			l.Refs = linkRefs[d]
			old := l.Hold
			if err := fixLease(kv.LeaseLink, repo, d, &l.Hold, l.Refs); err != nil {
				return err
			}
			if changed || old != l.Hold {
				if err := tx.RewriteLink(repo, d, l); err != nil {
					return err
				}
			}
			blobRefs[d] += l.Refs
			linkedIn[d] = append(linkedIn[d], repo)
		}
	}
	for l := range leaseIdx {
		if err := tx.DeleteLease(l); err != nil {
			return err
		}
	}
	// Blob records: counts from the links; a record no repository links
	// is garbage.
	var unlinked []string
	if err := tx.ForEachBlob(func(d string, b kv.Blob) error {
		if len(linkedIn[d]) == 0 {
			unlinked = append(unlinked, d)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, d := range unlinked {
		if err := tx.DeleteBlob(d); err != nil {
			return err
		}
		if dg, err := digest.Parse(d); err == nil {
			c.freed = append(c.freed, dg)
		}
	}
	var want kv.Counters
	blobSize := map[string]int64{}
	var rewrite []struct {
		d string
		b kv.Blob
	}
	if err := tx.ForEachBlob(func(d string, b kv.Blob) error {
		blobSize[d] = b.Size
		nb := kv.Blob{Size: b.Size, Links: uint64(len(linkedIn[d])), Refs: blobRefs[d]}
		if nb != b {
			rewrite = append(rewrite, struct {
				d string
				b kv.Blob
			}{d, nb})
		}
		want.Blobs++
		want.BlobBytes += b.Size
		want.LogicalBytes += int64(nb.Refs) * b.Size
		switch {
		case nb.Refs == 0:
			want.UnreferencedBlobs++
			want.UnreferencedBytes += b.Size
		case nb.Refs >= 2:
			want.SharedBytes += b.Size
		}
		return nil
	}); err != nil {
		return err
	}
	for _, w := range rewrite {
		if err := tx.RewriteBlob(w.d, w.b); err != nil {
			return err
		}
	}
	if err := tx.RewriteBlobLinks(linkedIn); err != nil {
		return err
	}
	// Totals, from scratch.
	repos, _ = tx.Repos("", -1)
	want.Repos = int64(len(repos))
	for _, repo := range repos {
		var rs kv.RepoStats
		if err := tx.ForEachTag(repo, func(string, string) error { rs.Tags++; return nil }); err != nil {
			return err
		}
		if err := tx.ForEachManifest(repo, func(_ string, m kv.Manifest) error {
			rs.Manifests++
			want.ManifestBytes += m.Size
			return nil
		}); err != nil {
			return err
		}
		if err := tx.ForEachLink(repo, func(d string, _ kv.Link) error {
			rs.Links++
			rs.Bytes += blobSize[d]
			if len(linkedIn[d]) == 1 {
				rs.UniqueBytes += blobSize[d]
			}
			return nil
		}); err != nil {
			return err
		}
		want.Tags += rs.Tags
		want.Manifests += rs.Manifests
		want.Links += rs.Links
		if err := tx.SetRepoStats(repo, rs); err != nil {
			return err
		}
	}
	if err := tx.ForEachLease(func(kv.Lease) error { want.Leases++; return nil }); err != nil {
		return err
	}
	return tx.SetCounters(want)
}
