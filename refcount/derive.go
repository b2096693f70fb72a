package refcount

import (
	"fmt"
	"sort"

	"github.com/kvreg/kvreg/kv"
)

// counted is a stored count and hold, as read.
type counted struct {
	refs uint64
	hold kv.Hold
}

// derived is one pass over the database: what is stored, what the edges say
// every count, record, index and total must be, and the structural problems
// met on the way. Check compares the two; Repair writes the second.
type derived struct {
	repos     []string
	manifests map[string]map[string]counted // repo -> manifest -> as stored
	links     map[string]map[string]counted // repo -> blob -> as stored
	manRefs   map[string]map[string]uint64  // repo -> manifest -> edges holding it
	linkRefs  map[string]map[string]uint64  // repo -> blob -> manifests using it
	stored    map[string]kv.Blob            // blob records as stored
	blobs     map[string]kv.BlobUse         // each recorded blob's use, as the links say
	linkedIn  map[string][]string           // blob -> repositories linking it, sorted
	repoStats map[string]kv.RepoStats
	totals    kv.Counters
	leases    map[kv.Lease]bool // the expiry index
	probs     []Problem

	// What repair removes: tags of missing manifests, referrer entries of
	// missing (or other) manifests, subject edges from missing subjects.
	danglingTags   []repoKey
	badReferrers   []referrerKey
	subjectlessRef []referrerKey
}

type repoKey struct{ repo, name string }

type referrerKey struct{ repo, subject, digest string }

func (d *derived) add(kind, obj, format string, args ...any) {
	d.probs = append(d.probs, Problem{Kind: kind, Object: obj, Detail: fmt.Sprintf(format, args...)})
}

// deriveTx reads the whole database once. An edge counts only if both its
// ends exist; one that does not is reported as a structural problem.
func deriveTx(tx *kv.Tx) (*derived, error) {
	d := &derived{
		manifests: map[string]map[string]counted{}, links: map[string]map[string]counted{},
		manRefs: map[string]map[string]uint64{}, linkRefs: map[string]map[string]uint64{},
		stored: map[string]kv.Blob{}, blobs: map[string]kv.BlobUse{}, linkedIn: map[string][]string{},
		repoStats: map[string]kv.RepoStats{}, leases: map[kv.Lease]bool{},
	}
	if err := tx.ForEachBlob(func(dg string, b kv.Blob) error { d.stored[dg] = b; return nil }); err != nil {
		return nil, err
	}
	if err := tx.ForEachLease(func(l kv.Lease) error { d.leases[l] = true; return nil }); err != nil {
		return nil, err
	}
	var err error
	if d.repos, _, err = tx.Repos("", -1); err != nil {
		return nil, err
	}
	for _, repo := range d.repos {
		if err := d.repoTx(tx, repo); err != nil {
			return nil, err
		}
	}
	t := &d.totals
	t.Repos, t.Leases = int64(len(d.repos)), int64(len(d.leases))
	for dg, b := range d.stored {
		sort.Strings(d.linkedIn[dg])
		var refs uint64
		for _, repo := range d.linkedIn[dg] {
			refs += d.linkRefs[repo][dg]
		}
		d.blobs[dg] = kv.BlobUse{Links: uint64(len(d.linkedIn[dg])), Refs: refs}
		t.Blobs++
		t.BlobBytes += b.Size
		t.LogicalBytes += int64(refs) * b.Size
		switch {
		case refs == 0:
			t.UnreferencedBlobs++
			t.UnreferencedBytes += b.Size
		case refs >= 2:
			t.SharedBytes += b.Size
		}
	}
	for _, repo := range d.repos {
		rs := d.repoStats[repo]
		for dg := range d.links[repo] {
			if len(d.linkedIn[dg]) == 1 {
				rs.UniqueBytes += d.stored[dg].Size
			}
		}
		d.repoStats[repo] = rs
		t.Tags += rs.Tags
		t.Manifests += rs.Manifests
		t.Links += rs.Links
	}
	return d, nil
}

func (d *derived) repoTx(tx *kv.Tx, repo string) error {
	manifests := map[string]counted{}
	links := map[string]counted{}
	manRefs := map[string]uint64{}
	linkRefs := map[string]uint64{}
	d.manifests[repo], d.links[repo], d.manRefs[repo], d.linkRefs[repo] = manifests, links, manRefs, linkRefs
	var rs kv.RepoStats
	if err := tx.ForEachLink(repo, func(dg string, l kv.Link) error {
		links[dg] = counted{l.Refs, l.Hold}
		return nil
	}); err != nil {
		return err
	}
	subjects := map[string]string{}
	children := map[string][]string{}
	if err := tx.ForEachManifest(repo, func(dg string, m kv.Manifest) error {
		manifests[dg] = counted{m.Refs, m.Hold}
		subjects[dg] = m.Subject
		children[dg] = m.Children
		d.totals.ManifestBytes += m.Size
		size, err := tx.ManifestContentSize(repo, dg)
		if err != nil {
			return err
		}
		if size != int(m.Size) {
			d.add(ProblemContentMissing, repo+"@"+dg, "manifest bytes missing or of the wrong size")
		}
		for _, b := range m.Blobs {
			if _, ok := links[b]; !ok {
				d.add(ProblemDanglingEdge, repo+"@"+dg, "references blob %s, not linked in the repository", b)
				continue
			}
			linkRefs[b]++
		}
		return nil
	}); err != nil {
		return err
	}
	rs.Manifests = int64(len(manifests))
	for dg, chs := range children {
		for _, ch := range chs {
			if _, ok := manifests[ch]; !ok {
				d.add(ProblemDanglingEdge, repo+"@"+dg, "references child manifest %s, which does not exist", ch)
				continue
			}
			manRefs[ch]++
		}
	}
	if err := tx.ForEachTag(repo, func(tag, dg string) error {
		rs.Tags++
		if _, ok := manifests[dg]; !ok {
			d.add(ProblemDanglingTag, repo+":"+tag, "points at %s, which does not exist", dg)
			d.danglingTags = append(d.danglingTags, repoKey{repo, tag})
			return nil
		}
		manRefs[dg]++
		return nil
	}); err != nil {
		return err
	}
	if err := tx.ForEachReferrer(repo, func(subject string, ref kv.Referrer) error {
		if s, ok := subjects[ref.Digest]; !ok || s != subject {
			d.add(ProblemDanglingReferrer, repo+"@"+ref.Digest, "indexed as a referrer of %s", subject)
			d.badReferrers = append(d.badReferrers, referrerKey{repo, subject, ref.Digest})
			return nil
		}
		if !ref.Counted {
			return nil
		}
		if _, ok := manifests[subject]; !ok {
			d.add(ProblemDanglingEdge, repo+"@"+subject, "subject edge from a manifest that does not exist")
			d.subjectlessRef = append(d.subjectlessRef, referrerKey{repo, subject, ref.Digest})
			return nil
		}
		manRefs[ref.Digest]++
		return nil
	}); err != nil {
		return err
	}
	for dg := range links {
		b, ok := d.stored[dg]
		if !ok {
			d.add(ProblemDanglingLink, repo+"@"+dg, "linked blob has no record")
		}
		d.linkedIn[dg] = append(d.linkedIn[dg], repo)
		rs.Links++
		rs.Bytes += b.Size
	}
	d.repoStats[repo] = rs
	return nil
}
