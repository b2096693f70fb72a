package refcount

import (
	"sort"
	"time"

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
	return r.RepairGrace(deep, removeBroken, DefaultOrphanGrace)
}

// RepairGrace is Repair removing the strays older than grace that
// CheckGrace reports.
func (r *Registry) RepairGrace(deep, removeBroken bool, grace time.Duration) (*RepairReport, error) {
	rep := &RepairReport{Broken: []string{}, Fixed: []Problem{}}
	if err := r.Recover(); err != nil {
		return nil, err
	}
	r.recovered.Store(true)
	for {
		n, err := r.Sweep(1000)
		if err != nil {
			return nil, err
		}
		if n < 1000 {
			break
		}
	}
	before, err := r.CheckGrace(deep, grace)
	if err != nil {
		return nil, err
	}
	bad := map[string]bool{}
	var unlocated []string
	for _, p := range before {
		switch p.Kind {
		case ProblemBlobMissing, ProblemBlobSize, ProblemBlobCorrupt:
			bad[p.Object] = true
		case ProblemBlobLocation:
			unlocated = append(unlocated, p.Object)
		case ProblemOrphanObject, ProblemOrphanMultipart:
			if err := r.blobs.RemoveStray(p.Object); err != nil {
				return nil, err
			}
		case ProblemOrphanFile, ProblemPendingDelete:
			if err := r.removeOrphan(p.Object); err != nil {
				return nil, err
			}
		}
	}
	c, err := r.update(func(tx *kv.Tx, c *change) error {
		rep.Broken = nil // the closure may run again: each run reports afresh
		if err := forgetLocationsTx(tx, unlocated); err != nil {
			return err
		}
		if err := r.repairTx(tx, c, bad, removeBroken, rep); err != nil {
			return err
		}
		return r.repairQuotasTx(tx)
	})
	if err != nil {
		return nil, err
	}
	rep.ReclaimedBytes = c.Reclaimed
	rep.BrokenRemoved = removeBroken && len(rep.Broken) > 0
	after, err := r.CheckGrace(deep, grace)
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

// forgetLocationsTx makes the records of blobs name no location: their
// bytes are found through the blob store (its index on S3), which is right
// whatever happened to the blob since the check, where a location read
// before this transaction might not be.
func forgetLocationsTx(tx *kv.Tx, blobs []string) error {
	for _, d := range blobs {
		b, ok, err := tx.Blob(d)
		if err != nil {
			return err
		}
		if !ok || b.Location == "" {
			continue
		}
		b.Location = ""
		if err := tx.RewriteBlob(d, b); err != nil {
			return err
		}
	}
	return nil
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
		linking, err := tx.LinkingRepos(d)
		if err != nil {
			return err
		}
		for _, repo := range linking {
			if _, err := tx.DeleteLink(repo, d); err != nil {
				return err
			}
		}
		if _, ok, err := tx.Blob(d); err != nil {
			return err
		} else if ok {
			if err := tx.DeleteBlob(d); err != nil {
				return err
			}
			if dg, err := digest.Parse(d); err == nil {
				c.freed = append(c.freed, dg)
			}
		}
	}
	repos, _, err := tx.Repos("", -1)
	if err != nil {
		return err
	}
	// Manifests that reference what is gone are broken, and so are the
	// indexes above them.
	for _, repo := range repos {
		for {
			var broken []string
			err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error {
				for _, b := range m.Blobs {
					if _, ok, err := tx.Link(repo, b); err != nil {
						return err
					} else if !ok {
						broken = append(broken, d)
						return nil
					}
				}
				for _, ch := range m.Children {
					if _, ok, err := tx.Manifest(repo, ch); err != nil {
						return err
					} else if !ok {
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
					tags, err := tx.TagsOf(repo, d)
					if err != nil {
						return err
					}
					for _, t := range tags {
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
				tags, err := tx.TagsOf(repo, d)
				if err != nil {
					return err
				}
				for _, t := range tags {
					rep.Broken = append(rep.Broken, repo+":"+t)
				}
				// Forget its edges to what is gone, then delete it.
				if m.Blobs, err = existingTx(m.Blobs, func(d string) (kv.Link, bool, error) { return tx.Link(repo, d) }); err != nil {
					return err
				}
				if m.Children, err = existingTx(m.Children, func(d string) (kv.Manifest, bool, error) { return tx.Manifest(repo, d) }); err != nil {
					return err
				}
				if err := r.deleteManifestTx(tx, c, repo, d, m); err != nil {
					return err
				}
			}
		}
	}
	if err := r.recountTx(tx, c); err != nil {
		return err
	}
	if err := mendTagPushedTx(tx); err != nil {
		return err
	}
	if err := r.mendOutboxTx(tx); err != nil {
		return err
	}
	// Last: the tags recountTx dropped leave rows too.
	return removeOrphanCacheRowsTx(tx)
}

// existingTx keeps the digests of ds whose record exists, by exists.
func existingTx[T any](ds []string, exists func(d string) (T, bool, error)) ([]string, error) {
	var out []string
	for _, d := range ds {
		_, ok, err := exists(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// recountTx removes what points at nothing and rewrites every count,
// hold, index and counter from the edges (see deriveTx).
func (r *Registry) recountTx(tx *kv.Tx, c *change) error {
	d, err := deriveTx(tx)
	if err != nil {
		return err
	}
	for _, t := range d.danglingTags {
		if err := r.deleteTagTx(tx, t.repo, t.name); err != nil {
			return err
		}
	}
	for _, ref := range d.badReferrers {
		if err := tx.DeleteReferrer(ref.repo, ref.subject, ref.digest); err != nil {
			return err
		}
	}
	for _, ref := range d.subjectlessRef {
		if err := tx.PutReferrer(ref.repo, ref.subject, ref.digest, false); err != nil {
			return err
		}
	}
	leases := d.leases
	// fixHold makes a hold consistent and the expiry index agree with it,
	// and gives an object nothing holds a lease of one grace period.
	fixHold := func(kind kv.LeaseKind, repo, dg string, h *kv.Hold, refs uint64) error {
		switch {
		case h.Lease == 0:
			h.Pending = 0
		case h.Pending == 0:
			h.Pending = 1
		}
		if refs == 0 && h.Lease == 0 {
			h.Lease, h.Pending = c.grace, 1
		}
		if h.Lease != 0 {
			l := kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: dg}
			if !leases[l] {
				if err := tx.PutLease(l); err != nil {
					return err
				}
			}
			delete(leases, l)
		}
		return nil
	}
	for _, repo := range d.repos {
		for dg, was := range d.manifests[repo] {
			m, _, err := tx.Manifest(repo, dg)
			if err != nil {
				return err
			}
			m.Refs = d.manRefs[repo][dg]
			if err := fixHold(kv.LeaseManifest, repo, dg, &m.Hold, m.Refs); err != nil {
				return err
			}
			if (counted{m.Refs, m.Hold}) != was {
				if err := tx.PutManifest(repo, dg, m, nil); err != nil {
					return err
				}
			}
		}
		for dg, was := range d.links[repo] {
			l := kv.Link{Refs: d.linkRefs[repo][dg], Hold: was.hold}
			if err := fixHold(kv.LeaseLink, repo, dg, &l.Hold, l.Refs); err != nil {
				return err
			}
			if (counted{l.Refs, l.Hold}) != was {
				if err := tx.RewriteLink(repo, dg, l); err != nil {
					return err
				}
			}
		}
	}
	for l := range leases {
		if err := tx.DeleteLease(l); err != nil {
			return err
		}
	}
	// A blob record no repository links is garbage.
	for dg, b := range d.blobs {
		if b.Links != 0 {
			continue
		}
		if err := tx.DeleteBlob(dg); err != nil {
			return err
		}
		if parsed, err := digest.Parse(dg); err == nil {
			c.freed = append(c.freed, parsed)
		}
	}
	// The records, indexes and totals, from the store as it now is.
	if d, err = deriveTx(tx); err != nil {
		return err
	}
	if err := tx.RewriteBlobLinks(d.linkedIn); err != nil {
		return err
	}
	for _, repo := range d.repos {
		if err := tx.SetRepoStats(repo, d.repoStats[repo]); err != nil {
			return err
		}
	}
	return tx.SetCounters(d.totals)
}
