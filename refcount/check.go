package refcount

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/kvreg/kvreg/blobs"
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
	ProblemDanglingTag      = "dangling-tag"      // a tag names a manifest that does not exist
	ProblemDanglingEdge     = "dangling-edge"     // a manifest references a link or child that does not exist
	ProblemDanglingLink     = "dangling-link"     // a link names a blob with no record
	ProblemDanglingReferrer = "dangling-referrer" // the referrers index names a manifest that does not exist
	ProblemCount            = "count-mismatch"    // a stored count differs from the edges
	ProblemUnheld           = "unheld"            // no edges and no lease
	ProblemLeaseExpired     = "lease-expired"     // no edges and a lease that has expired, not yet swept
	ProblemLeaseIndex       = "lease-index"       // a lease and the expiry index disagree
	ProblemContentMissing   = "content-missing"   // a manifest record without its bytes
	ProblemBlobMissing      = "blob-missing"      // a blob record without its file
	ProblemBlobSize         = "blob-size"         // a blob file of the wrong size
	ProblemBlobCorrupt      = "blob-corrupt"      // a blob file whose bytes do not match its digest (deep)
	ProblemOrphanFile       = "orphan-file"       // a file in the blob directory with no record
	ProblemPendingDelete    = "pending-delete"    // a tombstone whose file is still there
)

// Check verifies the invariants of the reference model over the database
// and the blob directory. With deep, it rehashes every blob file. It reads
// one consistent snapshot of the database; files written while it runs may
// show as orphans on a busy registry.
func (r *Registry) Check(deep bool) ([]Problem, error) {
	var probs []Problem
	add := func(kind, obj, format string, args ...any) {
		probs = append(probs, Problem{Kind: kind, Object: obj, Detail: fmt.Sprintf(format, args...)})
	}
	now := r.now()
	blobRecs := map[string]kv.Blob{}
	var tombs []string
	err := r.db.View(func(tx *kv.Tx) error {
		if err := tx.ForEachBlob(func(d string, b kv.Blob) error { blobRecs[d] = b; return nil }); err != nil {
			return err
		}
		tombs = tx.Tombstones()
		leaseIdx := map[kv.Lease]bool{}
		if err := tx.ForEachLease(func(l kv.Lease) error { leaseIdx[l] = true; return nil }); err != nil {
			return err
		}
		checkLease := func(kind kv.LeaseKind, repo, d string, lease int64, refs uint64) {
			obj := repo + "@" + d
			if lease != 0 {
				l := kv.Lease{Expiry: lease, Kind: kind, Repo: repo, Digest: d}
				if !leaseIdx[l] {
					add(ProblemLeaseIndex, obj, "lease until %d is not in the expiry index", lease)
				}
				delete(leaseIdx, l)
			}
			if refs == 0 {
				switch {
				case lease == 0:
					add(ProblemUnheld, obj, "no edges and no lease")
				case lease <= now:
					add(ProblemLeaseExpired, obj, "no edges and its lease expired")
				}
			}
		}
		blobLinks := map[string]uint64{}
		repos, _ := tx.Repos("", -1)
		for _, repo := range repos {
			links := map[string]kv.Link{}
			manifests := map[string]kv.Manifest{}
			if err := tx.ForEachLink(repo, func(d string, l kv.Link) error { links[d] = l; return nil }); err != nil {
				return err
			}
			if err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error { manifests[d] = m; return nil }); err != nil {
				return err
			}
			linkRefs := map[string]uint64{}
			manRefs := map[string]uint64{}
			for d, m := range manifests {
				if tx.ManifestContentSize(repo, d) != int(m.Size) {
					add(ProblemContentMissing, repo+"@"+d, "manifest bytes missing or of the wrong size")
				}
				for _, b := range m.Blobs {
					if _, ok := links[b]; !ok {
						add(ProblemDanglingEdge, repo+"@"+d, "references blob %s, not linked in the repository", b)
					}
					linkRefs[b]++
				}
				for _, ch := range m.Children {
					if _, ok := manifests[ch]; !ok {
						add(ProblemDanglingEdge, repo+"@"+d, "references child manifest %s, which does not exist", ch)
					}
					manRefs[ch]++
				}
			}
			if err := tx.ForEachTag(repo, func(tag, d string) error {
				if _, ok := manifests[d]; !ok {
					add(ProblemDanglingTag, repo+":"+tag, "points at %s, which does not exist", d)
				}
				manRefs[d]++
				return nil
			}); err != nil {
				return err
			}
			if err := tx.ForEachReferrer(repo, func(subject string, ref kv.Referrer) error {
				m, ok := manifests[ref.Digest]
				if !ok || m.Subject != subject {
					add(ProblemDanglingReferrer, repo+"@"+ref.Digest, "indexed as a referrer of %s", subject)
					return nil
				}
				if ref.Counted {
					if _, ok := manifests[subject]; !ok {
						add(ProblemDanglingEdge, repo+"@"+subject, "subject edge from a manifest that does not exist")
					}
					manRefs[ref.Digest]++
				}
				return nil
			}); err != nil {
				return err
			}
			for d, m := range manifests {
				if m.Refs != manRefs[d] {
					add(ProblemCount, repo+"@"+d, "manifest count is %d, edges say %d", m.Refs, manRefs[d])
				}
				checkLease(kv.LeaseManifest, repo, d, m.Lease, manRefs[d])
			}
			for d, l := range links {
				if _, ok := blobRecs[d]; !ok {
					add(ProblemDanglingLink, repo+"@"+d, "linked blob has no record")
				}
				if l.Refs != linkRefs[d] {
					add(ProblemCount, repo+"@"+d, "link count is %d, manifests say %d", l.Refs, linkRefs[d])
				}
				checkLease(kv.LeaseLink, repo, d, l.Lease, linkRefs[d])
				blobLinks[d]++
			}
		}
		for l := range leaseIdx {
			add(ProblemLeaseIndex, l.Repo+"@"+l.Digest, "expiry index entry with no matching lease")
		}
		for d, b := range blobRecs {
			if b.Links != blobLinks[d] {
				add(ProblemCount, d, "blob count is %d, links say %d", b.Links, blobLinks[d])
			}
			if blobLinks[d] == 0 {
				add(ProblemUnheld, d, "blob record that no repository links")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tomb := map[string]bool{}
	for _, t := range tombs {
		tomb[t] = true
	}
	seen := map[string]bool{}
	err = r.blobs.Walk(func(d digest.Digest, path string, size int64) error {
		if d == "" {
			add(ProblemOrphanFile, path, "not a blob file name")
			return nil
		}
		seen[string(d)] = true
		b, ok := blobRecs[string(d)]
		switch {
		case !ok && tomb[string(d)]:
			add(ProblemPendingDelete, string(d), "record deleted, file still present")
		case !ok:
			add(ProblemOrphanFile, string(d), "file with no record (%d bytes)", size)
		case size != b.Size:
			add(ProblemBlobSize, string(d), "file has %d bytes, record says %d", size, b.Size)
		case deep:
			if got, err := hashFile(path, d.Algorithm()); err != nil || got != d {
				add(ProblemBlobCorrupt, string(d), "content does not match its digest")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for d := range blobRecs {
		if !seen[d] {
			add(ProblemBlobMissing, d, "record with no file")
		}
	}
	sort.Slice(probs, func(i, j int) bool {
		if probs[i].Kind != probs[j].Kind {
			return probs[i].Kind < probs[j].Kind
		}
		return probs[i].Object < probs[j].Object
	})
	return probs, nil
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

var _ = blobs.ParseDigest
