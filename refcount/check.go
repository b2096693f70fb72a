package refcount

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// Problem is one broken invariant.
type Problem struct {
	Kind   string `json:"kind"`
	Object string `json:"object"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return p.Kind + " " + p.Object + ": " + p.Detail }

// Kinds of Problem.
const (
	ProblemDanglingTag      = "dangling-tag"       // a tag names a manifest that does not exist
	ProblemDanglingEdge     = "dangling-edge"      // a manifest references a link or child that does not exist
	ProblemDanglingLink     = "dangling-link"      // a link names a blob with no record
	ProblemDanglingReferrer = "dangling-referrer"  // the referrers index names a manifest that does not exist
	ProblemCount            = "count-mismatch"     // a stored count differs from the edges
	ProblemUnheld           = "unheld"             // no edges and no lease
	ProblemLeaseExpired     = "lease-expired"      // no edges and a lease that has expired, not yet swept
	ProblemLeaseIndex       = "lease-index"        // a lease and the expiry index disagree
	ProblemContentMissing   = "content-missing"    // a manifest record without its bytes
	ProblemBlobMissing      = "blob-missing"       // a blob record without its file
	ProblemBlobSize         = "blob-size"          // a blob file of the wrong size
	ProblemBlobCorrupt      = "blob-corrupt"       // a blob file whose bytes do not match its digest (deep)
	ProblemOrphanFile       = "orphan-file"        // a file in the blob directory with no record
	ProblemPendingDelete    = "pending-delete"     // a tombstone whose file is still there
	ProblemCounter          = "counter-mismatch"   // a store or repository total differs from the records
	ProblemLinkIndex        = "link-index"         // the blob-to-repository index disagrees with the links
	ProblemInterrupted      = "interrupted-upload" // an upload caught between its file and its record
)

// checkState is what one pass over the database learns.
type checkState struct {
	now      int64
	probs    []Problem
	blobs    map[string]kv.Blob
	tombs    map[string]bool
	want     kv.Counters
	repoWant map[string]kv.RepoStats
}

func (st *checkState) add(kind, obj, format string, args ...any) {
	st.probs = append(st.probs, Problem{Kind: kind, Object: obj, Detail: fmt.Sprintf(format, args...)})
}

// Check verifies the invariants of the reference model over the database
// and the blob directory. With deep, it rehashes every blob file. It reads
// one consistent snapshot of the database; files written while it runs may
// show as orphans on a busy registry.
func (r *Registry) Check(deep bool) ([]Problem, error) {
	st := &checkState{now: r.now(), blobs: map[string]kv.Blob{}, tombs: map[string]bool{}, repoWant: map[string]kv.RepoStats{}}
	if err := r.db.View(st.checkDBTx); err != nil {
		return nil, err
	}
	if err := r.checkFiles(st, deep); err != nil {
		return nil, err
	}
	sort.Slice(st.probs, func(i, j int) bool {
		if st.probs[i].Kind != st.probs[j].Kind {
			return st.probs[i].Kind < st.probs[j].Kind
		}
		return st.probs[i].Object < st.probs[j].Object
	})
	return st.probs, nil
}

func (st *checkState) checkDBTx(tx *kv.Tx) error {
	if err := tx.ForEachBlob(func(d string, b kv.Blob) error { st.blobs[d] = b; return nil }); err != nil {
		return err
	}
	for _, t := range tx.Tombstones() {
		st.tombs[t] = true
	}
	leaseIdx := map[kv.Lease]bool{}
	if err := tx.ForEachLease(func(l kv.Lease) error { leaseIdx[l] = true; return nil }); err != nil {
		return err
	}
	st.want.Leases = int64(len(leaseIdx))
	checkLease := func(kind kv.LeaseKind, repo, d string, h kv.Hold, refs uint64) {
		obj := repo + "@" + d
		lease := h.Lease
		if (h.Lease != 0) != (h.Pending != 0) {
			st.add(ProblemLeaseIndex, obj, "lease until %d with %d pending holds", h.Lease, h.Pending)
		}
		if lease != 0 {
			l := kv.Lease{Expiry: lease, Kind: kind, Repo: repo, Digest: d}
			if !leaseIdx[l] {
				st.add(ProblemLeaseIndex, obj, "lease until %d is not in the expiry index", lease)
			}
			delete(leaseIdx, l)
		}
		if refs == 0 {
			switch {
			case lease == 0:
				st.add(ProblemUnheld, obj, "no edges and no lease")
			case lease <= st.now:
				st.add(ProblemLeaseExpired, obj, "no edges and its lease expired")
			}
		}
	}

	blobRefs := map[string]uint64{}
	linkedIn := map[string][]string{}
	repoLinks := map[string]map[string]kv.Link{}
	repos, _ := tx.Repos("", -1)
	st.want.Repos = int64(len(repos))
	for _, repo := range repos {
		links := map[string]kv.Link{}
		manifests := map[string]kv.Manifest{}
		if err := tx.ForEachLink(repo, func(d string, l kv.Link) error { links[d] = l; return nil }); err != nil {
			return err
		}
		if err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error { manifests[d] = m; return nil }); err != nil {
			return err
		}
		repoLinks[repo] = links
		rs := kv.RepoStats{Manifests: int64(len(manifests)), Links: int64(len(links))}
		linkRefs := map[string]uint64{}
		manRefs := map[string]uint64{}
		for d, m := range manifests {
			st.want.ManifestBytes += m.Size
			if tx.ManifestContentSize(repo, d) != int(m.Size) {
				st.add(ProblemContentMissing, repo+"@"+d, "manifest bytes missing or of the wrong size")
			}
			for _, b := range m.Blobs {
				if _, ok := links[b]; !ok {
					st.add(ProblemDanglingEdge, repo+"@"+d, "references blob %s, not linked in the repository", b)
				}
				linkRefs[b]++
			}
			for _, ch := range m.Children {
				if _, ok := manifests[ch]; !ok {
					st.add(ProblemDanglingEdge, repo+"@"+d, "references child manifest %s, which does not exist", ch)
				}
				manRefs[ch]++
			}
		}
		if err := tx.ForEachTag(repo, func(tag, d string) error {
			rs.Tags++
			if _, ok := manifests[d]; !ok {
				st.add(ProblemDanglingTag, repo+":"+tag, "points at %s, which does not exist", d)
			}
			manRefs[d]++
			return nil
		}); err != nil {
			return err
		}
		if err := tx.ForEachReferrer(repo, func(subject string, ref kv.Referrer) error {
			m, ok := manifests[ref.Digest]
			if !ok || m.Subject != subject {
				st.add(ProblemDanglingReferrer, repo+"@"+ref.Digest, "indexed as a referrer of %s", subject)
				return nil
			}
			if ref.Counted {
				if _, ok := manifests[subject]; !ok {
					st.add(ProblemDanglingEdge, repo+"@"+subject, "subject edge from a manifest that does not exist")
				}
				manRefs[ref.Digest]++
			}
			return nil
		}); err != nil {
			return err
		}
		for d, m := range manifests {
			if m.Refs != manRefs[d] {
				st.add(ProblemCount, repo+"@"+d, "manifest count is %d, edges say %d", m.Refs, manRefs[d])
			}
			checkLease(kv.LeaseManifest, repo, d, m.Hold, manRefs[d])
		}
		for d, l := range links {
			b, ok := st.blobs[d]
			if !ok {
				st.add(ProblemDanglingLink, repo+"@"+d, "linked blob has no record")
			}
			if l.Refs != linkRefs[d] {
				st.add(ProblemCount, repo+"@"+d, "link count is %d, manifests say %d", l.Refs, linkRefs[d])
			}
			checkLease(kv.LeaseLink, repo, d, l.Hold, linkRefs[d])
			// From the edges, not the stored count, so that one wrong
			// count is reported once.
			blobRefs[d] += linkRefs[d]
			linkedIn[d] = append(linkedIn[d], repo)
			rs.Bytes += b.Size
		}
		st.want.Tags += rs.Tags
		st.want.Manifests += rs.Manifests
		st.want.Links += rs.Links
		st.repoWant[repo] = rs
	}
	for _, repo := range repos {
		rs := st.repoWant[repo]
		for d := range repoLinks[repo] {
			if len(linkedIn[d]) == 1 {
				rs.UniqueBytes += st.blobs[d].Size
			}
		}
		st.repoWant[repo] = rs
		got, _, err := tx.RepoStats(repo)
		if err != nil {
			st.add(ProblemCounter, repo, "repository stats unreadable: %v", err)
		} else if got != rs {
			st.add(ProblemCounter, repo, "repository stats %+v, records say %+v", got, rs)
		}
	}
	for l := range leaseIdx {
		st.add(ProblemLeaseIndex, l.Repo+"@"+l.Digest, "expiry index entry with no matching lease")
	}
	for d, b := range st.blobs {
		st.want.Blobs++
		st.want.BlobBytes += b.Size
		st.want.LogicalBytes += int64(blobRefs[d]) * b.Size
		switch {
		case blobRefs[d] == 0:
			st.want.UnreferencedBlobs++
			st.want.UnreferencedBytes += b.Size
		case blobRefs[d] >= 2:
			st.want.SharedBytes += b.Size
		}
		if n := uint64(len(linkedIn[d])); b.Links != n {
			st.add(ProblemCount, d, "blob count is %d, links say %d", b.Links, n)
		}
		if b.Refs != blobRefs[d] {
			st.add(ProblemCount, d, "blob reference count is %d, links say %d", b.Refs, blobRefs[d])
		}
		if len(linkedIn[d]) == 0 {
			st.add(ProblemUnheld, d, "blob record that no repository links")
		}
		idx := tx.LinkingRepos(d)
		sort.Strings(idx)
		sort.Strings(linkedIn[d])
		if fmt.Sprint(idx) != fmt.Sprint(linkedIn[d]) {
			st.add(ProblemLinkIndex, d, "index lists repositories %v, links are in %v", idx, linkedIn[d])
		}
	}
	if got := tx.Counters(); got != st.want {
		st.add(ProblemCounter, "store", "counters %+v, records say %+v", got, st.want)
	}
	return nil
}

func (r *Registry) checkFiles(st *checkState, deep bool) error {
	type candidate struct {
		kind string
		d    digest.Digest
	}
	var cands []candidate
	seen := map[string]bool{}
	err := r.blobs.Walk(func(d digest.Digest, path string, size int64) error {
		if d == "" {
			st.add(ProblemOrphanFile, path, "not a blob file name")
			return nil
		}
		seen[string(d)] = true
		b, ok := st.blobs[string(d)]
		switch {
		case !ok && st.tombs[string(d)]:
			cands = append(cands, candidate{ProblemPendingDelete, d})
		case !ok:
			cands = append(cands, candidate{ProblemOrphanFile, d})
		case size != b.Size:
			cands = append(cands, candidate{ProblemBlobSize, d})
		case deep:
			if got, err := hashFile(path, d.Algorithm()); err != nil || got != d {
				cands = append(cands, candidate{ProblemBlobCorrupt, d})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for d := range st.blobs {
		if !seen[d] {
			if dg, err := digest.Parse(d); err == nil {
				cands = append(cands, candidate{ProblemBlobMissing, dg})
			}
		}
	}
	// The walk and the snapshot are not atomic on a running registry: an
	// upload may have linked a file it has not recorded yet, a delete may
	// have removed a file after the snapshot. Confirm each finding under
	// the digest's lock against the current record.
	for _, c := range cands {
		kind, detail, err := r.fileStateLocked(c.d)
		if err != nil {
			return err
		}
		if kind == c.kind || (c.kind == ProblemBlobCorrupt && kind == "") {
			if c.kind == ProblemBlobCorrupt {
				detail = "content does not match its digest"
			}
			st.add(c.kind, string(c.d), "%s", detail)
		}
	}
	interrupted, err := r.blobs.Interrupted()
	if err != nil {
		return err
	}
	for id, d := range interrupted {
		unlock := r.blobs.Lock(d)
		still, _ := r.blobs.Interrupted()
		unlock()
		if _, ok := still[id]; ok {
			st.add(ProblemInterrupted, id, "upload stopped between linking its file and recording it")
		}
	}
	return nil
}

// fileStateLocked classifies a blob's file against its current record,
// holding the digest's lock; "" means consistent.
func (r *Registry) fileStateLocked(d digest.Digest) (kind, detail string, err error) {
	unlock := r.blobs.Lock(d)
	defer unlock()
	var rec kv.Blob
	var ok, tomb bool
	err = r.db.View(func(tx *kv.Tx) error {
		var err error
		rec, ok, err = tx.Blob(string(d))
		tomb = tx.HasTombstone(string(d))
		return err
	})
	if err != nil {
		return "", "", err
	}
	size, serr := r.blobs.Stat(d)
	exists := serr == nil
	switch {
	case exists && !ok && tomb:
		return ProblemPendingDelete, "record deleted, file still present", nil
	case exists && !ok:
		return ProblemOrphanFile, fmt.Sprintf("file with no record (%d bytes)", size), nil
	case exists && size != rec.Size:
		return ProblemBlobSize, fmt.Sprintf("file has %d bytes, record says %d", size, rec.Size), nil
	case !exists && ok:
		return ProblemBlobMissing, "record with no file", nil
	}
	return "", "", nil
}

func hashFile(path string, alg digest.Algorithm) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	v := alg.Digester()
	if _, err := io.Copy(v.Hash(), f); err != nil {
		return "", err
	}
	return v.Digest(), nil
}
